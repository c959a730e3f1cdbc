/**
 * The training primitives' gradients, one namespace (`backward` in the package's exports):
 * convolution data and weight gradients (conv.ts), and train-mode batch norm, ReLU, pooling, bias
 * sums and MoCo's momentum update (layers.ts). Each runs on the CPU or on the CUDA device its tensors
 * are on.
 */
export { conv2dBackwardData, conv2dBackwardDataEpilogue, conv2dBackwardWeight } from './conv';
export {
  batchNormTrain, batchNormTrainAddRelu, batchNormBackward, batchNormReluBackward, reluBackward, maxPool2dBackward,
  globalAvgPoolBackward, sumRows, momentumUpdate, momentumUpdateInPlace,
} from './layers';
export type { BatchNormTrainOptions, BatchNormTrainParams, BatchNormTrainResult } from './layers';
