/** Exit codes of every `flotilla` command (README, "Command line"). */
export const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3 } as const;
