// The CPU op table with the portable micro-kernel (capped before the addon loads).
process.env.SSL_INV_ISA = 'generic';
import t from 'tap';
import { runOpTable } from './op-table';
import { native } from '../../src/native';

t.comment(`kernel: ${native().info().gemmKernel}`);
runOpTable(t);
