export * from './orders.js';
export * from './conversion.js';
export * from './ledger.js';
