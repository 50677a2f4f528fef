// The protocol tests' support, one import for every test of this package:
// `import { … } from '…/test/support/index.js'`. Each piece keeps its own file with one job.
export * from './ct-vectors.js';
export * from './doc-sample.js';
export * from './doc-tables.js';
export * from './round-log-fixtures.js';
