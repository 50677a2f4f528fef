export * from './events.js';
export * from './record.js';
export * from './tree-head.js';
export * from './log-builder.js';
export * from './verify.js';
export * from './summary.js';
export * from './render.js';
export * from './screened-out.js';
