import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import {
  TaskDefinitionFieldsSchema,
  TaskDefinitionSchema,
  bundleFloat32Weights,
  safeParseStrict,
  sha256Hex,
  type TaskControlAction,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { ConfigError, describeIssues, loadConfig } from '../config.js';
import { OperatorClient } from '../operator-client.js';
import { printData, runCommand } from '../output.js';
import { commandSummary } from '../top-commands.js';
import { describeEnvironmentAt } from '../settings.js';

/**
 * A task file: everything of a task but the base model, which comes from `--base` (and the module
 * shapes, read from it). Omitted fields take the defaults of the task definition.
 */
export const TaskFileSchema = TaskDefinitionFieldsSchema.pick({
  taskId: true,
  description: true,
  adapter: true,
  rounds: true,
  policy: true,
});

/** Input and output widths of the target modules, read from the bundle's `<module>/kernel` [in, out]. */
export function moduleShapesFromBundle(
  bundle: Uint8Array,
  modules: string[],
): Record<string, { in: number; out: number }> {
  const weights = bundleFloat32Weights(bundle);
  const shapes: Record<string, { in: number; out: number }> = {};
  for (const module of modules) {
    const kernel = weights.get(`${module}/kernel`);
    const [inputs, outputs] = kernel?.shape ?? [];
    if (inputs === undefined || outputs === undefined) {
      throw new ConfigError(`adapter.targetModules: the base model has no dense layer named "${module}"`);
    }
    shapes[module] = { in: inputs, out: outputs };
  }
  return shapes;
}

/** The operator's moves on a task (TASK_CONTROL_MOVES), each a sub-command. */
const CONTROL_HELP: ReadonlyArray<[TaskControlAction, string]> = [
  ['pause', 'pause an active task: no round opens or selects until it resumes (a reporting round finishes)'],
  ['resume', 'resume a paused task'],
  ['stop', 'stop a task for good: its round in flight is abandoned unless already aggregating'],
  ['archive', 'archive a task (stopping it first if it runs): listed apart on the dashboard'],
];

export function registerTasks(program: Command): void {
  const tasks = program.command('tasks').description(commandSummary('tasks'));
  tasks
    .command('create')
    .description('upload a base model bundle and register a task from a YAML/JSON task file')
    .argument('<task-file>', 'taskId, description, adapter, rounds, policy')
    .requiredOption('--base <bundle>', 'base model (tfjs-layers-bundle file)')
    .option('--json', 'print JSON')
    .action((file: string, flags: { base: string; json?: boolean }) =>
      runCommand(async () => {
        let raw: unknown;
        try {
          const text = readFileSync(file, 'utf8');
          raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
        } catch (error) {
          throw new ConfigError(`${file}: ${(error as Error).message}`);
        }
        const parsed = safeParseStrict(TaskFileSchema, raw);
        if (!parsed.success) throw new ConfigError(describeIssues(file, parsed.error));
        const bundle = new Uint8Array(readFileSync(flags.base));
        const digest = sha256Hex(bundle);
        const task: TaskDefinitionInput = {
          ...parsed.data,
          baseModel: { digest, format: 'tfjs-layers-bundle', bytes: bundle.length },
          moduleShapes: moduleShapesFromBundle(bundle, parsed.data.adapter.targetModules),
          createdAt: Date.now(),
        };
        // Cross-field rules (e.g. rounds.minReports <= rounds.goalCount) before anything is uploaded.
        const complete = TaskDefinitionSchema.safeParse(task);
        if (!complete.success) throw new ConfigError(describeIssues(file, complete.error));
        const client = new OperatorClient(loadConfig(program.opts<{ config?: string }>()));
        await client.request('PUT', `/blobs/${digest}`, undefined, bundle);
        const signed = await client.request<{ task: { taskId: string }; signature: string }>(
          'POST',
          '/api/admin/tasks',
          task,
        );
        printData(
          { taskId: signed.task.taskId, baseModelDigest: digest, signature: signed.signature },
          flags.json === true,
        );
      }),
    );
  for (const [action, what] of CONTROL_HELP)
    tasks
      .command(action)
      .description(what)
      .argument('<task-id>')
      .option('--reason <text>', 'why, for the round log (default: "<action> by the operator")')
      .option('--json', 'print JSON')
      .action((taskId: string, flags: { reason?: string; json?: boolean }) =>
        runCommand(async () => {
          const client = new OperatorClient(loadConfig(program.opts<{ config?: string }>()));
          const state = await client.request<Record<string, unknown>>(
            'POST',
            `/api/admin/tasks/${encodeURIComponent(taskId)}/${action}`,
            flags.reason !== undefined ? { reason: flags.reason } : {},
          );
          printData(state, flags.json === true);
        }),
      );
  tasks
    .command('show')
    .description('print a registered task (signed)')
    .argument('<task-id>')
    .action((taskId: string) =>
      runCommand(async () => {
        const client = new OperatorClient(loadConfig(program.opts<{ config?: string }>()));
        printData(await client.request('GET', `/api/tasks/${encodeURIComponent(taskId)}`), true);
      }),
    );
  describeEnvironmentAt(program, 'tasks', ['coordinatorUrl', 'operatorToken']);
}
