// The four-at-a-time sums (cosine.ts, checks.ts, lane-sums-kernel.ts) take their inputs in groups
// of four; a short last group is filled with its own first item, whose extra sums are not kept.
import { at } from '@flotilla/protocol';

export type Four<T> = [T, T, T, T];

/** The group of four starting at `first`, padded with `items[first]`, and how many of it count. */
export function groupOfFour<T>(items: readonly T[], first: number): { group: Four<T>; kept: number } {
  const pad = at(items, first);
  const group: Four<T> = [pad, items[first + 1] ?? pad, items[first + 2] ?? pad, items[first + 3] ?? pad];
  return { group, kept: Math.min(4, items.length - first) };
}
