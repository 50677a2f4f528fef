export * from './events.js';
export * from './record.js';
export * from './verify.js';
export * from './summary.js';
export * from './render.js';
