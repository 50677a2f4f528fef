export * from './attacks.js';
export * from './little-is-enough.js';
