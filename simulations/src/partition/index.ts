export * from './partition.js';
export * from './statistics.js';
export * from './scheme.js';
