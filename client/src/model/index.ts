export * from './base-bundle.js';
export * from './seeded-rng.js';
