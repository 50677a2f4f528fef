// @flotilla/simulations: datasets, partitions, seeded randomness, attacks, scenarios, the base
// model and reports for simulated fleets. The runner that drives real coordinators and devices
// builds on these.
export * from './rng/index.js';
export * from './data/index.js';
export * from './partition/index.js';
export * from './attacks/index.js';
export * from './scenario/index.js';
export * from './report/index.js';
export * from './progress/index.js';
export * from './model/index.js';
export * from './runner/index.js';
export * from './study/index.js';
