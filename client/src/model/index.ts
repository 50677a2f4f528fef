export * from './base-bundle.js';
export * from './seeded-rng.js';
export * from './base-model-pool.js';
