/** Freezes `value` and everything reachable from it, so a shared parse result cannot be changed. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/**
 * Parse results of texts read over and over: a round's plan or a task's signed definition is
 * read from Redis by every submission and upload of the round, and checking it against its
 * schema cost more than the rest of those reads. The results are kept by their exact text
 * (a text is parsed once; a different text, e.g. a new round's plan, is parsed again), the
 * last `capacity` of them, and are deeply frozen: every caller shares one object.
 */
export class ParsedTextCache<T> {
  private readonly results = new Map<string, T>();

  constructor(
    private readonly parse: (text: string) => T,
    private readonly capacity = 32,
  ) {}

  /** `parse(text)`, from the cache when this exact text was parsed lately; throws what `parse` throws. */
  get(text: string): T {
    const cached = this.results.get(text);
    if (cached !== undefined) return cached;
    const parsed = deepFreeze(this.parse(text));
    if (this.results.size >= this.capacity) {
      const oldest = this.results.keys().next();
      if (oldest.done !== true) this.results.delete(oldest.value);
    }
    this.results.set(text, parsed);
    return parsed;
  }
}
