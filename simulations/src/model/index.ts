export * from './mlp.js';
export * from './evaluate.js';
export * from './base-model.js';
export * from './centralized.js';
