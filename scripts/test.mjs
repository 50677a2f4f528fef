#!/usr/bin/env node
// `npm test`: installs what a fresh clone lacks, runs every vitest project (the global setup
// starts a private redis-server on a unix socket and stops it), and ends with the plain line
// `N passed, N failed` counted from vitest's JSON report.
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync, rmSync } from 'node:fs';

const ensure = spawnSync(process.execPath, ['scripts/ensure-deps.mjs', '--redis'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

const report = '.vitest-report.json';
rmSync(report, { force: true });
const extra = process.argv.slice(2);
const vitest = spawnSync(
  process.execPath,
  [
    'node_modules/vitest/vitest.mjs',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...extra,
  ],
  { stdio: 'inherit' },
);

if (!existsSync(report)) {
  console.log('0 passed, 1 failed');
  console.error('vitest wrote no JSON report (it failed before running tests).');
  process.exit(1);
}
const summary = JSON.parse(readFileSync(report, 'utf8'));
const passed = summary.numPassedTests ?? 0;
// Suites that failed to load count as failures: their tests never ran.
const filesThatNeverRan = (summary.testResults ?? []).filter(
  (file) => file.status === 'failed' && (file.assertionResults ?? []).length === 0,
).length;
let failed = (summary.numFailedTests ?? 0) + filesThatNeverRan;
// A run that failed outside any test (global setup, config) still counts as a failure.
if (vitest.status !== 0 && failed === 0) failed = 1;
const skipped = (summary.numPendingTests ?? 0) + (summary.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(vitest.status === 0 && failed === 0 ? 0 : 1);
