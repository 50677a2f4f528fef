export * from './keys.js';
export * from './pseudonym.js';
export * from './stream.js';
export * from './mirror.js';
export * from './writer.js';
export * from './retention.js';
export * from './file.js';
export * from './cli.js';
