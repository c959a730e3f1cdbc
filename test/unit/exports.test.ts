// The package's entry point exposes the training API (the names a user of `ssl-invariances` imports).
import t from 'tap';
import * as api from '../../src/index';

t.test('training names are exported', async (t) => {
  for (const name of ['MocoV2', 'TrainableResNet', 'SGD', 'runPretraining', 'learningRate', 'epochOrder', 'stepImages',
    'stepPositions', 'stepsPerEpoch', 'freshMocoInit', 'saveMocoCheckpoint', 'loadMocoCheckpoint'] as const) {
    t.type((api as Record<string, unknown>)[name], 'function', name);
  }
  t.type(api.ops.mocoLoss, 'function');
  t.type(api.ops.mocoAccuracy, 'function');
  t.type(api.backward.batchNormTrain, 'function');
  t.same(api.stepImages([3, 1, 2], 0, 2), [3, 1]);
});

t.test('the device self-test is exported', async (t) => {
  t.type(api.runSelfTest, 'function');
});

t.test('checkpoint description and the new error codes are exported', async (t) => {
  t.type(api.describeCheckpoint, 'function');
  for (const code of ['ERR_NON_FINITE', 'ERR_DEVICE_FAULT', 'ERR_DECODE_WORKER'] as const) t.ok(api.ErrorCodes.includes(code), code);
});

t.test('the decode pool is exported', async (t) => {
  t.type(api.DecodePool, 'function');
  t.type(api.decodeImageFile, 'function');
});
