import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import type { CommandResult } from '@flotilla/coordinator/shared';
import { ConfigError, loadConfig } from '../config.js';
import { parseNumberOption, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';

function emit(result: CommandResult): number {
  process.stdout.write(result.output.endsWith('\n') ? result.output : `${result.output}\n`);
  return result.exitCode;
}

/** `flotilla audit verify|show|export`: the round log, for auditors. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description(commandSummary('audit'));
  audit
    .command('verify')
    .description(
      'check tree heads (signatures, roots, consistency), order, quorum before promotion, clip bounds and the ε budget; exit 0 on PASS, 1 on FAIL',
    )
    .argument('<file>', 'round log (JSONL), e.g. .flotilla/audit/round-log.jsonl')
    .option(
      '--key <base64>',
      "the coordinator's public key you trust (default: the first tree head's signer, reported as unpinned)",
    )
    .option(
      '--head <size:root>',
      'a signed tree head you obtained independently (records:root hash), to detect records cut from the end or a forked log',
    )
    .option(
      '--blobs <dir>',
      'blob directory holding retained deltas: recompute those aggregates and compare digests',
    )
    .option('--json', 'print { ok, records, firstBad, problems }')
    .action((file: string, flags: { key?: string; head?: string; blobs?: string; json?: boolean }) =>
      runCommand(async () => {
        let expectedHead: { treeSize: number; rootHash: string } | undefined;
        if (flags.head) {
          const [size, root] = flags.head.split(':');
          if (!root || !/^[0-9a-f]{64}$/.test(root))
            throw new ConfigError('--head: expected <tree size>:<64 hex root hash>');
          expectedHead = {
            treeSize: parseNumberOption(
              'head',
              size ?? '',
              (n) => Number.isInteger(n) && n >= 0,
              'a number of records',
            ),
            rootHash: root,
          };
        }
        const { LocalDirBlobStore, auditVerifyCommand } = await import('@flotilla/coordinator/shared');
        const { recomputeAggregateDigest } = await import('@flotilla/coordinator/worker');
        const blobs = flags.blobs ? new LocalDirBlobStore({ dir: flags.blobs }) : null;
        return emit(
          await auditVerifyCommand({
            file,
            json: flags.json === true,
            ...(blobs ? { recompute: (record) => recomputeAggregateDigest(record.event, blobs) } : {}),
            ...(flags.key ? { trustedKey: flags.key } : {}),
            ...(expectedHead ? { expectedHead } : {}),
          }),
        );
      }),
    );
  audit
    .command('show')
    .description('summarise the history, or one round')
    .argument('<file>', 'round log (JSONL)')
    .option('--round <n>', 'one round number')
    .option('--json', 'print JSON')
    .action((file: string, flags: { round?: string; json?: boolean }) =>
      runCommand(async () =>
        emit(
          await (
            await import('@flotilla/coordinator/shared')
          ).auditShowCommand({
            file,
            json: flags.json === true,
            ...(flags.round !== undefined
              ? {
                  round: parseNumberOption(
                    'round',
                    flags.round,
                    (n) => Number.isInteger(n) && n >= 0,
                    'a round number',
                  ),
                }
              : {}),
          }),
        ),
      ),
    );
  audit
    .command('export')
    .description(
      'write the round log from Redis (the source of truth) to a JSONL file; exit 1 when the prefix holds none (naming the prefixes that do)',
    )
    .requiredOption('--out <file>', 'destination')
    .option(
      '--prefix <prefix>',
      "the coordinator's Redis key prefix (default: FLOTILLA_PREFIX, else flotilla)",
    )
    .option(
      '--mirror <file>',
      'the JSONL mirror that holds the lines trimmed from Redis (default: <state-dir>/audit/round-log.jsonl when it exists)',
    )
    .action((flags: { out: string; prefix?: string; mirror?: string }) =>
      withLogRedis(flags, 'export', async (redis, config) => {
        const { auditExportCommand, defaultRoundLogPath } = await import('@flotilla/coordinator/shared');
        const mirrorPath = flags.mirror ?? defaultRoundLogPath(config.stateDir);
        const mirror = flags.mirror !== undefined || existsSync(mirrorPath) ? { mirrorPath } : {};
        return emit(await auditExportCommand({ redis, prefix: config.prefix, toFile: flags.out, ...mirror }));
      }),
    );
  describeEnvironmentAt(program, 'audit export', ['redisUrl', 'prefix', 'stateDir']);
  audit
    .command('mirrors')
    .description(
      'list the JSONL mirrors of the round log and how far each has synced (the Redis stream is trimmed only below all of them); --remove forgets a dead one',
    )
    .option('--remove <id>', 'a mirror id as listed (host:path) whose host is gone for good')
    .option(
      '--prefix <prefix>',
      "the coordinator's Redis key prefix (default: FLOTILLA_PREFIX, else flotilla)",
    )
    .action((flags: { remove?: string; prefix?: string }) =>
      withLogRedis(flags, 'mirrors', async (redis, config) => {
        const { auditMirrorsCommand } = await import('@flotilla/coordinator/shared');
        return emit(
          await auditMirrorsCommand({
            redis,
            prefix: config.prefix,
            ...(flags.remove !== undefined ? { remove: flags.remove } : {}),
          }),
        );
      }),
    );
  describeEnvironmentAt(program, 'audit mirrors', ['redisUrl', 'prefix']);

  /** Runs `body` on a connection to the configured Redis (required), closed afterwards. */
  function withLogRedis(
    flags: { prefix?: string },
    command: string,
    body: (redis: Redis, config: ReturnType<typeof loadConfig>) => Promise<number>,
  ) {
    return runCommand(async () => {
      const config = loadConfig({
        ...program.opts<{ config?: string }>(),
        ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}),
      });
      if (!config.redisUrl)
        throw new ConfigError(`redisUrl: ${command} reads the log from Redis (REDIS_URL or --config)`);
      const { Redis } = await import('ioredis');
      const { redisOptionsFromUrl } = await import('@flotilla/coordinator/shared');
      const redis = new Redis(redisOptionsFromUrl(config.redisUrl));
      try {
        return await body(redis, config);
      } finally {
        redis.disconnect();
      }
    });
  }
}
