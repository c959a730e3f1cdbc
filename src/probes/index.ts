/**
 * The downstream probes of the original (eval_downstream.py, eval_causal3dident.py), faithful to
 * scikit-learn 1.2 / scipy 1.10: L-BFGS-B, multinomial logistic regression with the original's
 * warm-start chain, Ridge, RBF KernelRidge with StandardScaler, KFold, the metrics and the CV searches.
 */
export {
  classificationProbe, regressionProbe, kernelRidgeProbe, wdRange, wdOffset, cGrid, firstBest,
} from './cv';
export type {
  ClassificationProbeOptions, RegressionProbeOptions, KernelRidgeProbeOptions, ProbeResult, KernelRidgeProbeResult, FeatureMatrix, ProgressEvent,
  ProgressCallback, WarmStartMode, ClassificationMetric, SearchTimings,
} from './cv';
export {
  fitLogisticRegression, fitLogisticBatch, predictLogistic, decisionFunction, logisticObjective, LogisticBatchObjective,
  encodeLabels, warmStartWeights,
} from './logistic';
export type { LogisticModel, LogisticOptions, BatchProblem } from './logistic';
export { LbfgsbSolver, minimizeLbfgsb, runLbfgsbBatch, LBFGSB_MESSAGES } from './lbfgsb';
export type { LbfgsbOptions, LbfgsbResult, LbfgsbStatus } from './lbfgsb';
export { fitRidgePath, predictRidgePath } from './ridge';
export type { RidgePath } from './ridge';
export { kernelRidgeGrid, CAUSAL3DIDENT_ALPHAS, CAUSAL3DIDENT_GAMMAS } from './kernel-ridge';
export { fitStandardScaler, transformStandard } from './scaler';
export type { StandardScaler } from './scaler';
export { kfoldSplits } from './kfold';
export type { Fold } from './kfold';
export { accuracy, confusionMatrix, meanPerClassAccuracy, r2Score, meanSquaredError } from './metrics';
export { symmetricEigen, multinomialLossGrad, rbfFromGram } from './eigen';
