export * from './lora-rules.js';
export * from './linear-algebra.js';
