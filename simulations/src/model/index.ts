export * from './mlp.js';
export * from './evaluate.js';
export * from './base-model.js';
export * from './centralized.js';
export * from './cnn.js';
export * from './char-rnn.js';
export * from './model-files.js';
