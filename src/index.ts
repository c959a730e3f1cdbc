/**
 * ssl-invariances: the public API.
 *
 * Tensors and ops (native memory, explicit disposal), ResNet feature extractors, safe checkpoint
 * loading, .npy and MAT-file I/O, the evaluation image pipeline, pre-training, every evaluation the
 * CLI runs (synthetic and real-world invariance, downstream transfer, Causal3DIdent) with its probes,
 * and typed errors. The long-running calls take an AbortSignal (src/abort.ts). See README.md for
 * examples.
 */
export { SslInvError, ErrorCodes, isSslInvError } from './errors';
export type { ErrorCode, ErrorDetails } from './errors';

export { Tensor, tensor, empty, zeros, scope, keep, memoryStats } from './tensor';
export type { DType, TypedArray } from './tensor';
export * as ops from './ops';
export { cudaInfo, cudaAvailable, resolveDevice, toDevice, synchronize, deviceMemoryStats, releaseDeviceCache, convKernelLaunches, convAutotune, convTuning, clearConvTuning } from './device';
export type { CudaInfo, CudaDeviceInfo, DeviceSpec, ConvTuningRecord } from './device';
export { runSelfTest } from './selftest';
export type { SelfTestCheck, SelfTestReport } from './selftest';

export { ResNetFeatures } from './nn/resnet';
export type { ParamSource } from './nn/resnet';
export { TrainableResNet, TrainTape } from './nn/resnet-train';
export type { BackwardResult, TrainForwardOptions } from './nn/resnet-train';
export { ARCHS, resnetSpec, expectedBackboneKeys, inferArch } from './nn/resnet-spec';
export type { Arch, ResNetSpec } from './nn/resnet-spec';

export { loadCheckpoint } from './io/torch-checkpoint';
export type { Checkpoint, CheckpointOptions } from './io/torch-checkpoint';
export { loadBackbone, checkStateDict } from './io/state-dict';
export type { Backbone, LazyTensor } from './io/state-dict';
export { describeCheckpoint } from './io/checkpoint-info';
export type { CheckpointInfo } from './io/checkpoint-info';
export { readNpy, readNpySync, writeNpy, parseNpy, encodeNpy } from './io/npy';
export type { NpyArray, NpyDType } from './io/npy';
export { readMat, parseMat, getMatNumeric, matValues } from './io/mat';
export type { MatFile, MatVariable, MatNumericArray, MatOtherVariable, MatClass, MatData, MatReadOptions } from './io/mat';
export { NpyRowWriter } from './io/npy-writer';
export { writeFileAtomic } from './io/atomic-write';

export { loadFeatureExtractor, chooseArch } from './eval/model-loader';
export type { LoadedModel } from './eval/model-loader';
export { featuresOfArray, featuresOfFiles } from './eval/features';
export type { FeatureChunk } from './eval/features';

export { decodeImageFile, decodeImageBuffer } from './data/decode';
export type { DecodedImage, DecodeOptions, ImageDecoder } from './data/decode';
export { DecodePool } from './data/decode-pool';
export type { DecodePoolOptions, DecodePoolStats } from './data/decode-pool';
export { listImageFolder, IMG_EXTENSIONS } from './data/image-folder';
export type { ImageFolderListing } from './data/image-folder';
export { imagenetEvalTransform, preprocess, IMAGENET_MEAN, IMAGENET_STD } from './data/preprocess';
export type { EvalTransform } from './data/preprocess';
export { loadBatches } from './data/loader';
export type { Batch, LoadBatchesOptions } from './data/loader';

export { runDemo } from './demo/run-demo';

export * as linalg from './linalg';
export * as backward from './backward';
export { SGD, sgdStep } from './optim/sgd';
export type { SgdOptions } from './optim/sgd';
export { MocoV2 } from './train/moco';
export type { MocoConfig, MocoInit, MocoStepOptions, MocoStepResult, MocoGpuMeters } from './train/moco';
export { LinearHead } from './train/linear-head';
export { freshMocoInit } from './train/moco-init';
export { saveMocoCheckpoint, loadMocoCheckpoint, restoreMoco, checkpointName } from './train/moco-checkpoint';
export type { LoadedMocoCheckpoint, RunSettings } from './train/moco-checkpoint';
export { runPretraining, learningRate, epochOrder, stepImages, stepPositions, stepsPerEpoch } from './train/pretrain';
export type { PretrainOptions, PretrainHooks, PretrainResult, EpochRecord, StepInfo, SkippedImage, StepViews } from './train/pretrain';
export { RandomState } from './random/mt19937';

export { SYNTHETIC_TRANSFORMS, transformGrid, defaultK } from './transforms/grid';
export type { SyntheticTransform, TransformGrid, ViewParams } from './transforms/grid';
export { makeViews, applyView } from './transforms/views';
export { makeViewsOnDevice } from './transforms/views-device';
export * as geometric from './transforms/geometric';
export * as color from './transforms/color';
export { augment, drawAugmentParams, applyAugment, AugmentRng } from './transforms/augment';

export * as datasets from './datasets';

export { loadNamedModel, NamedModel } from './eval/models';
export type { FuseMode, ModelPart, NamedModelOptions } from './eval/models';
export { loadOrComputeStats, readStatsFile, findStatsFiles } from './eval/stats';
export type { FeatureStats, ComputeStatsOptions } from './eval/stats';
export { prepareWhitening } from './eval/invariance';
export type { Whitening } from './eval/invariance';
export { evaluateSynthetic, sampleImages } from './eval/synthetic';
export type { SyntheticOptions, SyntheticResult } from './eval/synthetic';
export { evaluateRealWorld } from './eval/realworld';
export type { RealWorldOptions, RealWorldResult, ViewGroup } from './eval/realworld';
export { runSyntheticEvaluation, prepareContext, runSyntheticTransforms } from './eval/synthetic-run';
export type { ProgressSink, SyntheticRunOptions, EvaluationContext } from './eval/synthetic-run';
export { runRealWorld } from './eval/realworld-run';
export type { RealWorldRunOptions } from './eval/realworld-run';
export type { InvarianceResult } from './eval/results';
// Transfer (eval-downstream) and extrinsic (eval-causal3dident) evaluations, and their probes.
export { runDownstream, runCausal3DIdent, causal3dIdentSampleCount, seededSubset } from './eval/downstream-run';
export type { DownstreamOptions, DownstreamRun, Causal3DIdentRun } from './eval/downstream-run';
export {
  classificationProbe, regressionProbe, kernelRidgeProbe, wdRange, cGrid, fitLogisticRegression, predictLogistic,
  fitRidgePath, predictRidgePath, kernelRidgeGrid, kfoldSplits,
} from './probes';
export type {
  ClassificationProbeOptions, RegressionProbeOptions, KernelRidgeProbeOptions, ProbeResult, KernelRidgeProbeResult, FeatureMatrix,
  ProgressEvent as ProbeProgressEvent, ProgressCallback as ProbeProgressCallback, WarmStartMode, ClassificationMetric, SearchTimings,
  LogisticModel, LogisticOptions, RidgePath, Fold,
} from './probes';
// Everything else of the probes (L-BFGS-B, the scaler, the metrics, ...).
export * as probes from './probes';
export { renderReport, writeReport } from './report/html';
export { invarianceTransferCorrelations, correlationsCsv } from './report/correlations';
export type { CorrelationRow } from './report/correlations';
export { pearson, spearman, rankAverage } from './eval/correlation';
export { torchSave, TorchTensor } from './io/torch-save';
export { readSafetensors, writeSafetensors } from './io/safetensors';
