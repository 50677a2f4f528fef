export * from './adapted-model.js';
export * from './adapter-tensors.js';
export * from './peft-io.js';
export { SUPPORTED_LAYER_CLASSES } from './layer-plan.js';
