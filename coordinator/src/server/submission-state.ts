import type { Redis } from 'ioredis';
import { z } from 'zod';
import { DeviceIdSchema, FlotillaError, type UpdateSubmission } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { runScript } from '../shared/redis-script.js';
import { parseSignedTask } from '../shared/task-registry.js';
import { parseDeviceRecord } from './device-registry.js';
import { ID_SLOTS, textAroundIds } from './key-slots.js';
import { READ_SUBMISSION } from './lua/round-scripts.js';
import { parseAcceptedUpdate, parseRoundRecord } from './round-store.js';

const ReplySchema = z.tuple([
  z.string().nullable(),
  z.array(z.string()),
  z.string().nullable(),
  z.number().int(),
  z.string().nullable(),
  z.number().int(),
  z.string().nullable(),
  z.number().int(),
]);

/** A hash's HGETALL reply as a flat list, as an object. */
function fieldsOf(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

/**
 * Everything the checks of a submission read, in one Redis call (round-read-submission.lua): the
 * task's current round, the device's stored update in the claimed round (when that names a round
 * of the task), whether it was selected there and answered already, its record, the task, and
 * whether it uploaded the blob. The checks then run in their order on these answers; the accept
 * script checks again, atomically, what may have changed since.
 */
export async function readSubmissionState(
  deps: { redis: Redis; keys: RedisKeys },
  deviceId: string,
  submission: UpdateSubmission,
) {
  const { keys } = deps;
  const { metadata } = submission;
  const [roundBefore = '', roundAfter = ''] = textAroundIds(keys.round(ID_SLOTS[0]));
  const reply = await runScript(
    deps.redis,
    READ_SUBMISSION.source,
    7,
    keys.currentRound(metadata.taskId),
    keys.roundUpdates(metadata.roundId),
    keys.roundSelected(metadata.roundId),
    keys.roundSkips(metadata.roundId),
    keys.device(deviceId),
    keys.task(metadata.taskId),
    keys.blobUploaders(metadata.blobDigest),
    deviceId,
    metadata.roundId.startsWith(`${metadata.taskId}:`) ? '1' : '0',
    roundBefore,
    roundAfter,
  );
  const parsed = ReplySchema.safeParse(reply);
  if (!parsed.success)
    throw new FlotillaError('INTERNAL', `round-read-submission.lua returned ${JSON.stringify(reply)}`);
  const [currentId, round, stored, selected, device, answered, task, uploader] = parsed.data;
  return {
    round: currentId === null ? null : parseRoundRecord(fieldsOf(round)),
    stored: parseAcceptedUpdate(stored),
    selected: selected === 1,
    device: DeviceIdSchema.safeParse(deviceId).success ? parseDeviceRecord(device) : null,
    responded: answered === 1,
    signed: parseSignedTask(task),
    uploader: uploader === 1,
  };
}
