import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
/** The private test Redis started by the global setup. */
export function testRedisUrl() {
  return inject('redisUrl');
}
/** A key prefix no other test uses, so tests can share one Redis without clashing. */
export function uniquePrefix(label) {
  return `t-${label}-${randomBytes(4).toString('hex')}`;
}
