export { Rng, createRng } from './random.js';
export { splitmix32, xoshiro128StarStar, stateFromSeed, stateFromPath } from './xoshiro128.js';
