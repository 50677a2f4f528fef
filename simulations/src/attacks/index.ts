export * from './attacks.js';
export * from './little-is-enough.js';
export * from './ground-truth.js';
export * from './inner-product.js';
export * from './colluding.js';
export * from './backdoor.js';
