export * from './suite.js';
export * from './analyze.js';
export * from './report.js';
export * from './run-suite.js';
