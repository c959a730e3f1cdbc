// The CPU op table on the best instruction set this machine has (AVX-512 here).
import t from 'tap';
import { runOpTable } from './op-table';
import { native } from '../../src/native';

t.comment(`kernel: ${native().info().gemmKernel}`);
runOpTable(t);
