// Whole-network parity with PyTorch: features of torch-saved ResNet-18, ResNet-50, ResNet-18w3 and
// ResNet-50w3 checkpoints (MoCo and plain state dicts, rebuilt byte for byte from the committed
// fixtures) against torch 1.13's float32 features, every row within 1e-4 relative error
// (||ours - torch|| / ||torch||); the float64 PyTorch run is reported alongside.
import t from 'tap';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import { scope, tensor } from '../../src/tensor';
import { fixtureExpected, fixtureExpectedF64, fixtureInput, materializeCheckpoint, rowErrors } from '../helpers/model-fixtures';

const CASES: { ckpt: string; inputs: string[]; f64?: boolean; arch: string; source: string }[] = [
  { ckpt: 'resnet18-moco', inputs: ['x224', 'x64'], f64: true, arch: 'resnet18', source: 'moco' },
  { ckpt: 'resnet18-plain', inputs: ['x224', 'x64'], f64: true, arch: 'resnet18', source: 'state_dict' },
  { ckpt: 'resnet50-moco', inputs: ['x224', 'x64'], f64: true, arch: 'resnet50', source: 'moco' },
  { ckpt: 'resnet50-plain', inputs: ['x224', 'x64'], f64: true, arch: 'resnet50', source: 'state_dict' },
  { ckpt: 'resnet18w3-plain', inputs: ['x64'], f64: true, arch: 'resnet18w3', source: 'state_dict' },
  { ckpt: 'resnet50w3-moco', inputs: ['x64'], f64: true, arch: 'resnet50w3', source: 'moco' },
];

for (const c of CASES) {
  t.test(c.ckpt, async (t) => {
    const file = await materializeCheckpoint(c.ckpt);
    const model = await loadFeatureExtractor(file);
    t.equal(model.arch, c.arch, `architecture (${model.archSource})`);
    t.equal(model.backbone.source, c.source);
    for (const input of c.inputs) {
      const x = fixtureInput(input);
      const out = scope(() => model.net.forward(tensor(x.data, x.shape)).toFloat32Array());
      const ref = fixtureExpected(`${c.ckpt}.${input}.float32.features`);
      t.equal(out.length, ref.data.length, 'feature count');
      const errs = rowErrors(out, ref.data, x.shape[0]!);
      let note = '';
      if (c.f64 && input === 'x64') {
        const ref64 = fixtureExpectedF64(`${c.ckpt}.${input}.float64.features`);
        note = `; vs torch float64: ${rowErrors(out, ref64.data, x.shape[0]!).map((e) => e.toExponential(1)).join(', ')}`;
      }
      t.ok(errs.every((e) => e < 1e-4), `${input}: row errors vs torch float32 ${errs.map((e) => e.toExponential(1)).join(', ')}${note}`);
    }
    model.net.dispose();
  });
}
