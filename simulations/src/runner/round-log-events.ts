import { readFileSync } from 'node:fs';
import { RoundLogEventSchema, type RoundLogEvent } from '@flotilla/protocol';

/** The events of a round log's JSONL mirror, in order (each line `{ ..., event }`). */
export function readRoundLogEvents(path: string): RoundLogEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => RoundLogEventSchema.parse((JSON.parse(line) as { event: unknown }).event));
}
