// pythonExp against Python 3's '{:.4e}' (the expected strings were printed by /usr/bin/python3:
// python3 -c "print('{:.4e}'.format(x))"), ties included: Python rounds the exact binary value half
// to even, where JavaScript's toExponential rounds ties up.
import t from 'tap';
import { pythonExp } from '../../src/cli/python-format';

const PYTHON: [number, string][] = [
  [0.653, '6.5300e-01'], [1.03125, '1.0312e+00'], [9.99995, '1.0000e+01'], [9.99994999, '9.9999e+00'],
  [0, '0.0000e+00'], [-2.5e-7, '-2.5000e-07'], [123456.5, '1.2346e+05'], [6.25e-3, '6.2500e-03'],
  [1e-5, '1.0000e-05'], [2.0000500000000003, '2.0001e+00'], [99999.5, '1.0000e+05'], [0.00012345, '1.2345e-04'],
  [1.00005, '1.0001e+00'], [3.14159265, '3.1416e+00'], [1e21, '1.0000e+21'], [7.5e-61, '7.5000e-61'],
  [1.5, '1.5000e+00'], [2.0000499999999997, '2.0000e+00'], [1.0000250000000001, '1.0000e+00'],
];

t.test("pythonExp is Python's '{:.4e}'", async (t) => {
  for (const [x, want] of PYTHON) t.equal(pythonExp(x), want, String(x));
  t.equal(pythonExp(NaN), 'nan');
  t.equal(pythonExp(Infinity), 'inf');
  t.equal(pythonExp(-Infinity), '-inf');
  t.equal(pythonExp(-0), '-0.0000e+00');
  t.equal(pythonExp(0.15625, 1), '1.6e-01', 'other widths: 1.5625 rounds up (not a tie at one decimal)');
  t.equal(pythonExp(0.125, 1), '1.2e-01', 'a tie at one decimal goes to the even digit');
  t.equal(pythonExp(0.375, 1), '3.8e-01');
});
