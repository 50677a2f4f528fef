import { readFileSync } from 'node:fs';
import { RoundLogEventSchema, isTreeHeadLine, type RoundLogEvent } from '@flotilla/protocol';

/** The events of a round log's JSONL mirror, in order (records `{ ..., event }`; tree heads are skipped). */
export function readRoundLogEvents(path: string): RoundLogEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line): unknown => JSON.parse(line))
    .filter((line) => !isTreeHeadLine(line))
    .map((line) => RoundLogEventSchema.parse((line as { event: unknown }).event));
}
