import { z } from 'zod';

/**
 * Fields of `value` that `schema` does not know, anywhere in it, as zod `unrecognized_keys` issues
 * (one per object, naming its path and the keys). zod objects drop unknown keys silently, which a
 * wire message from a newer peer needs; what a person wrote (a task file, a scenario) should not:
 * a typo like `byzantin: 1` would otherwise be ignored and its default used. Objects declared
 * `.loose()` accept any key and are not checked.
 */
export function unknownFieldIssues(
  schema: z.ZodType,
  value: unknown,
  path: PropertyKey[] = [],
): z.core.$ZodIssueUnrecognizedKeys[] {
  const def = schema.def as z.core.$ZodTypeDef & Record<string, unknown>;
  switch (def.type) {
    case 'object': {
      if (!isRecord(value)) return [];
      const shape = (schema as z.ZodObject).shape as Record<string, z.ZodType>;
      const catchall = def.catchall as z.ZodType | undefined;
      const unknown = Object.keys(value).filter((key) => !Object.hasOwn(shape, key));
      const issues: z.core.$ZodIssueUnrecognizedKeys[] =
        unknown.length > 0 && catchall === undefined
          ? [
              {
                code: 'unrecognized_keys',
                keys: unknown,
                path,
                input: value,
                message: `Unrecognized key${unknown.length > 1 ? 's' : ''}: ${unknown.map((k) => `"${k}"`).join(', ')}`,
              },
            ]
          : [];
      for (const [key, field] of Object.entries(shape))
        if (Object.hasOwn(value, key)) issues.push(...unknownFieldIssues(field, value[key], [...path, key]));
      return issues;
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return unknownFieldIssues(def.innerType as z.ZodType, value, path);
    case 'pipe':
      return unknownFieldIssues(def.in as z.ZodType, value, path);
    case 'lazy':
      return unknownFieldIssues((def.getter as () => z.ZodType)(), value, path);
    case 'array':
      return Array.isArray(value)
        ? value.flatMap((item, i) => unknownFieldIssues(def.element as z.ZodType, item, [...path, i]))
        : [];
    case 'record':
      return isRecord(value)
        ? Object.entries(value).flatMap(([key, item]) =>
            unknownFieldIssues(def.valueType as z.ZodType, item, [...path, key]),
          )
        : [];
    case 'union': {
      // The option the value is (ignoring extra keys); none: the parse reports the value itself.
      const options = def.options as z.ZodType[];
      const matching = options.find((option) => option.safeParse(value).success);
      return matching ? unknownFieldIssues(matching, value, path) : [];
    }
    default:
      return [];
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * `schema.safeParse(value)`, refusing unknown fields anywhere in the value (see
 * `unknownFieldIssues`): for what a person wrote, so a misspelt field is an error naming it.
 */
export function safeParseStrict<T extends z.ZodType>(
  schema: T,
  value: unknown,
): z.ZodSafeParseResult<z.output<T>> {
  const unknown = unknownFieldIssues(schema, value);
  const parsed = schema.safeParse(value);
  if (unknown.length === 0) return parsed;
  const issues = [...unknown, ...(parsed.success ? [] : parsed.error.issues)];
  return { success: false, error: new z.ZodError(issues) } as z.ZodSafeParseResult<z.output<T>>;
}
