export * from './server/index.js';
export * from './shared/index.js';
