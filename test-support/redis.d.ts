/** The private test Redis started by the global setup. */
export declare function testRedisUrl(): string;
/** A key prefix no other test uses, so tests can share one Redis without clashing. */
export declare function uniquePrefix(label: string): string;
