export * from './mix-replay.js';
export * from './replay-buffer.js';
