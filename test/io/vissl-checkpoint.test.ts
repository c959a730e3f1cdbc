// VISSL checkpoints (io/state-dict.ts visslTrunk): the trunk under
// classy_state_dict.base_model.model.trunk, keys prefixed `_feature_blocks.`, beside heads and
// training state (what VISSL writes and its model zoo ships), and the converters' model_state_dict:
// the features of the same weights saved as a torchvision state dict, bit for bit. A
// classy_state_dict missing a level is ERR_CHECKPOINT_KEYS naming it.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import { loadBackbone } from '../../src/io/state-dict';
import { PyDict, SaveValue, TorchTensor, torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { scope, tensor } from '../../src/tensor';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-vissl-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const sd = torchvisionInitStateDict('resnet18', 7);
const trunk = new Map([...sd].filter(([k]) => !k.startsWith('fc.')).map(([k, v]) => [`_feature_blocks.${k}`, v]));
const heads = new Map([['0.clf.0.weight', new TorchTensor('float32', [128, 512], new Float32Array(128 * 512).fill(0.5))]]);
const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [2, 3, 32, 32]);
t.teardown(() => x.dispose());

async function features(file: string): Promise<Float32Array> {
  const m = await loadFeatureExtractor(file);
  t.equal(m.arch, 'resnet18', `${path.basename(file)}: resnet18 from the shapes`);
  const f = scope(() => m.net.forward(x).toFloat32Array());
  m.net.dispose();
  return f;
}

t.test('a VISSL trunk gives the torchvision state dict\'s features', async (t) => {
  const plain = path.join(dir, 'plain.pth');
  await torchSave(plain, sd);
  const vissl = path.join(dir, 'model_final_checkpoint_phase199.torch');
  await torchSave(vissl, new PyDict(new Map<string | number, SaveValue>([
    ['phase_idx', 199], ['iteration', 250000], ['type', 'checkpoint'],
    ['classy_state_dict', new PyDict(new Map([
      ['base_model', new PyDict(new Map([['model', new PyDict(new Map([['trunk', trunk], ['heads', heads]]))], ['meta', new PyDict(new Map())]]))],
      ['loss', new PyDict(new Map())],
    ]))],
  ])));
  const converted = path.join(dir, 'converted.torch');
  await torchSave(converted, new PyDict(new Map([['model_state_dict', trunk]])));
  const want = await features(plain);
  for (const file of [vissl, converted]) {
    const b = await loadBackbone(file);
    t.equal(b.droppedPrefix, '_feature_blocks.', `${path.basename(file)}: the prefix is stripped`);
    t.notOk([...b.tensors.keys()].some((k) => k.startsWith('0.clf')), 'the heads are not read as the trunk');
    const got = await features(file);
    t.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${path.basename(file)}: bit-identical features`);
  }
});

t.test('a classy_state_dict without its trunk is refused, naming the level', async (t) => {
  const file = path.join(dir, 'no-trunk.torch');
  await torchSave(file, new PyDict(new Map([['classy_state_dict', new PyDict(new Map([['base_model', new PyDict(new Map([['model', new PyDict(new Map([['heads', heads]]))]]))]]))]])));
  await t.rejects(loadBackbone(file), { code: 'ERR_CHECKPOINT_KEYS', file, field: 'classy_state_dict.base_model.model.trunk', message: /has no 'trunk' \(keys: heads\)/ });
});
