/**
 * The participant indices an aggregation record's `strategyOptions.screenedOut` names ("0,3":
 * updates the drift screen left out of the aggregate under `audit.excludeFlagged`, each weighing
 * 0); [] when the option is absent, null when it is malformed (not a comma-separated list of
 * indices, or an index past the participants).
 */
export function screenedOutIndices(value: unknown, participants: number): number[] | null {
  if (value === undefined) return [];
  if (typeof value !== 'string' || !/^\d+(,\d+)*$/.test(value)) return null;
  const indices = value.split(',').map(Number);
  return indices.every((i) => i < participants) ? indices : null;
}
