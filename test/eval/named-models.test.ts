// Models by name in --ckpt-dir (eval/models.ts resolveFile): the original's NAME.pth.tar first, else
// the one of NAME.pth / .pt / .torch (VISSL) / .safetensors that is there, read by its contents;
// two such files are refused (a result must not come from a guessed file), none is
// ERR_FILE_NOT_FOUND naming the names looked for.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNamedModel } from '../../src/eval/models';
import { encodeSafetensors } from '../../src/io/safetensors';
import { PyDict, TorchTensor, torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';

const ckptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-named-'));
t.teardown(() => fs.rmSync(ckptDir, { recursive: true, force: true }));

t.test('other extensions, the original\'s first, ambiguity refused', async (t) => {
  const sd = torchvisionInitStateDict('resnet18', 4);
  const trunk = new Map([...sd].filter(([k]) => !k.startsWith('fc.')).map(([k, v]) => [`_feature_blocks.${k}`, v]));
  await torchSave(path.join(ckptDir, 'vissl.torch'), new PyDict(new Map([['classy_state_dict', new PyDict(new Map([
    ['base_model', new PyDict(new Map([['model', new PyDict(new Map([['trunk', trunk]]))]]))]]))]])));
  fs.writeFileSync(path.join(ckptDir, 'hub.safetensors'), encodeSafetensors(new Map([...sd].map(([k, v]: [string, TorchTensor]) =>
    [k, { shape: [...v.shape], data: v.data as Float32Array }]))));
  await torchSave(path.join(ckptDir, 'both.pth.tar'), sd);
  fs.writeFileSync(path.join(ckptDir, 'both.pth'), 'not read: the .pth.tar comes first');
  await torchSave(path.join(ckptDir, 'twice.pth'), sd);
  await torchSave(path.join(ckptDir, 'twice.pt'), sd);

  const m = await loadNamedModel('vissl+hub+both', { ckptDir, fuseMode: 'cat' });
  t.same(m.provenance.map((p) => path.basename(p.file)), ['vissl.torch', 'hub.safetensors', 'both.pth.tar']);
  t.same(m.provenance.map((p) => p.arch), ['resnet18', 'resnet18', 'resnet18']);
  t.equal(m.featureDim, 3 * 512);
  m.dispose();
  await t.rejects(loadNamedModel('twice', { ckptDir }), { code: 'ERR_USAGE', message: /model 'twice' is ambiguous: twice\.pth and twice\.pt are both in/ });
  await t.rejects(loadNamedModel('nowhere', { ckptDir }), { code: 'ERR_FILE_NOT_FOUND', file: path.join(ckptDir, 'nowhere.pth.tar'),
    message: /\.pth, \.pt, \.torch, \.safetensors are also looked for/ });
});
