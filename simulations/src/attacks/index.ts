export * from './attacks.js';
