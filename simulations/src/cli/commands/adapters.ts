import type { Command } from 'commander';
import {
  FlotillaError,
  SIGNING_DOMAINS,
  SignedManifestSchema,
  manifestDigest,
  verifyPayload,
  type SignedManifest,
} from '@flotilla/protocol';
import { ConfigError, loadConfig } from '../config.js';
import { OperatorClient } from '../operator-client.js';
import { EXIT, printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';

async function fetchManifest(
  base: string,
  taskId: string,
  version: number | 'latest',
): Promise<SignedManifest | null> {
  const response = await fetch(
    new URL(`/api/tasks/${encodeURIComponent(taskId)}/adapters/${version}/manifest`, base),
  );
  if (response.status === 404) return null;
  if (!response.ok)
    throw new ConfigError(`coordinator answered HTTP ${response.status} for ${taskId} version ${version}`);
  const parsed = SignedManifestSchema.safeParse(await response.json());
  if (!parsed.success) throw new ConfigError(`coordinator sent a malformed manifest for version ${version}`);
  return parsed.data;
}

/** Refuses a task the coordinator does not know (NOT_FOUND, exit 2) rather than listing nothing. */
async function requireTask(base: string, taskId: string): Promise<void> {
  const response = await fetch(new URL(`/api/tasks/${encodeURIComponent(taskId)}`, base));
  if (response.status === 404)
    throw new FlotillaError('NOT_FOUND', `task "${taskId}" is not registered on ${new URL(base).origin}`);
  if (!response.ok) throw new ConfigError(`coordinator answered HTTP ${response.status} for task ${taskId}`);
}

/** `flotilla adapters list|show`: promoted adapter versions of a task, with their signed manifests. */
export function registerAdapters(program: Command): void {
  const adapters = program.command('adapters').description(commandSummary('adapters'));
  adapters
    .command('list')
    .description('every promoted version with its round, strategy, participants, ε and audit decision')
    .requiredOption('--task <id>', 'task id')
    .option('--json', 'print JSON')
    .action((flags: { task: string; json?: boolean }) =>
      runCommand(async () => {
        const base = loadConfig(program.opts<{ config?: string }>()).coordinatorUrl;
        await requireTask(base, flags.task);
        const latest = await fetchManifest(base, flags.task, 'latest');
        const versions: SignedManifest[] = [];
        for (let v = 1; latest && v <= latest.manifest.version; v++) {
          const signed = await fetchManifest(base, flags.task, v);
          if (signed) versions.push(signed);
        }
        const rows = versions.map(({ manifest: m }) => ({
          version: m.version,
          parent: m.parentVersion,
          round: m.roundId,
          strategy: `${m.aggregation.strategy}/${m.aggregation.loraRule}`,
          participants: m.aggregation.participants,
          epsilon: m.privacy?.epsilon ?? null,
          decision: m.audit.decision,
          rollbackOf: m.rollbackOf,
          adapter: m.adapter.f32.digest,
        }));
        if (flags.json) return printData({ task: flags.task, versions: rows }, true);
        if (rows.length === 0) process.stdout.write(`no promoted versions for ${flags.task}\n`);
        for (const r of rows) {
          process.stdout.write(
            `v${r.version}  parent v${r.parent}  ${r.round ?? `rollback of v${String(r.rollbackOf)}`}  ${r.strategy}  ` +
              `${r.participants} updates  ε ${r.epsilon === null ? '-' : r.epsilon.toFixed(3)}  ${r.adapter.slice(0, 12)}\n`,
          );
        }
      }),
    );
  adapters
    .command('show')
    .description('print one signed manifest and check its signature')
    .requiredOption('--task <id>', 'task id')
    .argument('<version>', "version number or 'latest'")
    .option('--key <base64>', "the coordinator's public key you trust (default: the key in the manifest)")
    .action((version: string, flags: { task: string; key?: string }) =>
      runCommand(async () => {
        const base = loadConfig(program.opts<{ config?: string }>()).coordinatorUrl;
        const wanted = version === 'latest' ? 'latest' : Number(version);
        if (wanted !== 'latest' && !(Number.isInteger(wanted) && wanted > 0))
          throw new ConfigError(`<version>: expected a number or 'latest', got "${version}"`);
        await requireTask(base, flags.task);
        const signed = await fetchManifest(base, flags.task, wanted);
        if (!signed) throw new FlotillaError('NOT_FOUND', `no version ${version} of ${flags.task}`);
        const key = flags.key ?? signed.coordinatorKey;
        const valid = verifyPayload(SIGNING_DOMAINS.manifest, signed.manifest, signed.signature, key);
        printData(
          {
            manifestDigest: manifestDigest(signed.manifest),
            signatureCheck: valid
              ? `valid (${flags.key ? 'pinned key' : 'key in the manifest, not pinned'})`
              : 'INVALID',
            ...signed,
          },
          true,
        );
        return valid ? EXIT.ok : EXIT.failed;
      }),
    );
  adapters
    .command('rollback')
    .description(
      "promote an older version's content again, as a new signed version (operator token required)",
    )
    .requiredOption('--task <id>', 'task id')
    .requiredOption('--to <version>', 'the version whose content becomes current')
    .requiredOption('--reason <text>', 'why; recorded in the manifest and the round log')
    .option('--json', 'print JSON')
    .action((flags: { task: string; to: string; reason: string; json?: boolean }) =>
      runCommand(async () => {
        const toVersion = Number(flags.to);
        if (!(Number.isInteger(toVersion) && toVersion > 0))
          throw new ConfigError(`--to: expected a version number, got "${flags.to}"`);
        const client = new OperatorClient(loadConfig(program.opts<{ config?: string }>()));
        const signed = SignedManifestSchema.parse(
          await client.request('POST', `/api/admin/tasks/${encodeURIComponent(flags.task)}/rollback`, {
            toVersion,
            reason: flags.reason,
          }),
        );
        printData(
          {
            version: signed.manifest.version,
            rollbackOf: signed.manifest.rollbackOf,
            adapter: signed.manifest.adapter.f32.digest,
            manifestDigest: manifestDigest(signed.manifest),
          },
          flags.json === true,
        );
      }),
    );
  describeEnvironmentAt(program, 'adapters list', ['coordinatorUrl']);
  describeEnvironmentAt(program, 'adapters show', ['coordinatorUrl']);
  describeEnvironmentAt(program, 'adapters rollback', ['coordinatorUrl', 'operatorToken']);
}
