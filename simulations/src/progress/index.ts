export * from './progress-bar.js';
export * from './setup-log.js';
