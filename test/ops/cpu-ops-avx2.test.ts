// The CPU op table with the AVX2 micro-kernel (capped before the addon loads).
process.env.SSL_INV_ISA = 'avx2';
import t from 'tap';
import { runOpTable } from './op-table';
import { native } from '../../src/native';

t.comment(`kernel: ${native().info().gemmKernel}`);
runOpTable(t);
