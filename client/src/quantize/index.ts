export * from './int8.js';
export * from './wire.js';
