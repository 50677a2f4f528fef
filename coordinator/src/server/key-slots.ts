// Keys a Lua script builds from ids it reads (a task's current round, then that round's hash) are
// passed to it as the text around their ids, made by keys.ts, so the script and the TypeScript
// side name the same keys.

/** Characters no key prefix holds, put where the first and the second id of a key go. */
export const ID_SLOTS = ['\u0001', '\u0002'] as const;

/** A key made with ID_SLOTS for its ids, as the text around them (the script puts ids between). */
export function textAroundIds(key: string): string[] {
  return key.split(new RegExp(`[${ID_SLOTS.join('')}]`));
}
