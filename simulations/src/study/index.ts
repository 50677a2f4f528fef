export * from './aggregate.js';
export * from './run-one.js';
export * from './run-outcome.js';
export * from './run-study.js';
export * from './study-report.js';
export * from './sweep.js';
