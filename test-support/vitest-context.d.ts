import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the private redis-server for integration tests (unix:// or the given REDIS_URL). */
    redisUrl: string;
  }
}
