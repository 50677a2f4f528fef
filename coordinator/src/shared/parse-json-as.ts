import type { z } from 'zod';

/**
 * `text` parsed as JSON and checked against `schema`; null when it is not JSON or does not match.
 * For text another process wrote (a Redis record, a pub/sub message, a child's stdout): it is
 * input like any other, and the caller decides what a bad one means.
 */
export function parseJsonAs<Schema extends z.ZodType>(schema: Schema, text: string): z.infer<Schema> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
