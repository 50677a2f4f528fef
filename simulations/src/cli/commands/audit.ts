import type { Command } from 'commander';
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
    .action((flags: { out: string; prefix?: string }) =>
      runCommand(async () => {
        const config = loadConfig({
          ...program.opts<{ config?: string }>(),
          ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}),
        });
        if (!config.redisUrl)
          throw new ConfigError('redisUrl: export reads the log from Redis (REDIS_URL or --config)');
        const { Redis } = await import('ioredis');
        const { auditExportCommand, redisOptionsFromUrl } = await import('@flotilla/coordinator/shared');
        const redis = new Redis(redisOptionsFromUrl(config.redisUrl));
        try {
          const result = await auditExportCommand({ redis, prefix: config.prefix, toFile: flags.out });
          return emit(result);
        } finally {
          redis.disconnect();
        }
      }),
    );
  describeEnvironmentAt(program, 'audit export', ['redisUrl', 'prefix']);
}
