// The package's entry point exposes the training API (the names a user of `ssl-invariances` imports).
import t from 'tap';
import * as path from 'node:path';
import ts from 'typescript';
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

t.test('cancellation: ERR_ABORTED is a stable code', async (t) => {
  t.ok(api.ErrorCodes.includes('ERR_ABORTED'), 'ERR_ABORTED');
});

t.test('every evaluation the CLI runs is exported, with its probes and readers', async (t) => {
  const fns = [
    // eval-synthetic, eval-realworld (and their parts)
    'runSyntheticEvaluation', 'prepareContext', 'runSyntheticTransforms', 'runRealWorld', 'evaluateSynthetic', 'evaluateRealWorld',
    'loadOrComputeStats', 'prepareWhitening', 'loadNamedModel',
    // eval-downstream, eval-causal3dident
    'runDownstream', 'runCausal3DIdent', 'causal3dIdentSampleCount', 'seededSubset',
    // the probes (ssl-inv probe) and their searches
    'classificationProbe', 'regressionProbe', 'kernelRidgeProbe', 'wdRange', 'cGrid', 'fitLogisticRegression', 'predictLogistic',
    'fitRidgePath', 'predictRidgePath', 'kernelRidgeGrid', 'kfoldSplits',
    // MAT-files (Flowers' labels and splits)
    'readMat', 'parseMat', 'getMatNumeric', 'matValues',
    // the report's invariance-transfer correlations
    'writeReport', 'invarianceTransferCorrelations', 'correlationsCsv', 'pearson', 'spearman', 'rankAverage',
  ] as const;
  for (const name of fns) t.type((api as Record<string, unknown>)[name], 'function', name);
  t.type(api.probes.minimizeLbfgsb, 'function', 'probes namespace: minimizeLbfgsb');
  t.type(api.probes.r2Score, 'function', 'probes namespace: r2Score');
  t.type(api.datasets.readDownstreamDataset, 'function', 'datasets.readDownstreamDataset');
  t.type(api.datasets.readCausal3DIdentDataset, 'function', 'datasets.readCausal3DIdentDataset');
  t.type(api.datasets.readRealWorldDataset, 'function', 'datasets.readRealWorldDataset');
  t.same(api.cGrid('default').length, 45, 'cGrid: the original\'s 45 C values');
});

t.test('the disposable classes implement Symbol.dispose / Symbol.asyncDispose', async (t) => {
  for (const [name, cls] of [['ResNetFeatures', api.ResNetFeatures], ['TrainableResNet', api.TrainableResNet], ['MocoV2', api.MocoV2],
    ['NamedModel', api.NamedModel]] as const) {
    t.type(cls.prototype[Symbol.dispose], 'function', `${name}[Symbol.dispose]`);
  }
  t.type(api.DecodePool.prototype[Symbol.asyncDispose], 'function', 'DecodePool[Symbol.asyncDispose]');
});

t.test('the option and result types are exported', async (t) => {
  // Types leave nothing at run time: a module that uses each one is type-checked against src/index.ts.
  const names = ['ProgressSink', 'ProbeProgressCallback', 'ProbeProgressEvent', 'ClassificationProbeOptions', 'RegressionProbeOptions',
    'KernelRidgeProbeOptions', 'FeatureMatrix', 'DownstreamOptions', 'DownstreamRun', 'Causal3DIdentRun', 'ProbeResult',
    'KernelRidgeProbeResult', 'SyntheticRunOptions', 'EvaluationContext', 'RealWorldRunOptions', 'ViewGroup', 'Whitening',
    'ComputeStatsOptions', 'SyntheticOptions', 'SyntheticResult', 'RealWorldOptions', 'RealWorldResult', 'NamedModelOptions', 'ModelPart',
    'MatFile', 'MatNumericArray', 'MatReadOptions', 'LogisticModel', 'RidgePath', 'Fold', 'WarmStartMode', 'SearchTimings'];
  const file = path.join(__dirname, '__exported_types.ts');
  const text = `import type * as api from '../../src/index';\n${names.map((n, i) => `export type T${i} = api.${n};`).join('\n')}\n` +
    // and the signal option where the entry points take it
    'export const o: Pick<api.DownstreamOptions, "signal"> & Pick<api.ClassificationProbeOptions, "signal"> = { signal: new AbortController().signal };\n';
  const options: ts.CompilerOptions = { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, lib: ['lib.es2022.d.ts'], types: ['node'],
    strict: true, noEmit: true, skipLibCheck: true, esModuleInterop: true };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host), exists = host.fileExists.bind(host);
  host.readFile = (f) => (f === file ? text : read(f));
  host.fileExists = (f) => f === file || exists(f);
  const program = ts.createProgram([file], options, host);
  const diags = [...program.getSyntacticDiagnostics(program.getSourceFile(file)), ...program.getSemanticDiagnostics(program.getSourceFile(file))];
  t.same(diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], `${names.length} types and the signal option`);
});
