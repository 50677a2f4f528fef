// The files `flotilla init` writes: a commented task.yaml that leaves every default to the task
// schema (and shows what it is), flotilla.yaml with the coordinator address and a fresh operator
// token, a README with the commands in order, and a .gitignore for what must not be shared.
import { defaultMaxBlobBytes, defaultMinReports, type AdapterSpec } from '@flotilla/protocol';
import type { DenseLayer } from '../model/export-model.js';

export interface StarterOptions {
  taskId: string;
  /** Port of the coordinator (flotilla.yaml). */
  port: number;
  /** Devices the README runs (each on a shard of rotated MNIST). */
  devices: number;
  /** Updates a round aims for. */
  goalCount: number;
  operatorToken: string;
  /** The command that runs the CLI, as the README shows it. */
  flotillaCommand: string;
  base: { digest: string; bytes: number; denseLayers: DenseLayer[]; trained: boolean; exportCommand: string };
}

/** The adapter of the starter task: FFA-LoRA on every dense layer of the base. */
export function starterAdapter(base: StarterOptions['base']): AdapterSpec {
  return { mode: 'ffa-lora', targetModules: base.denseLayers.map((l) => l.name), r: 16, alpha: 32, seed: 0 };
}

const MAX_STEPS = 20;
const BATCH_SIZE = 32;

export function taskYaml(options: StarterOptions): string {
  const adapter = starterAdapter(options.base);
  const shapes = Object.fromEntries(options.base.denseLayers.map((l) => [l.name, { in: l.in, out: l.out }]));
  const minReports = defaultMinReports({
    goalCount: options.goalCount,
    minGoalFraction: 0.8,
    overSelection: 1.3,
  });
  const selected = Math.ceil(options.goalCount * 1.3);
  return `# What the fleet trains: an FFA-LoRA adapter on base.bundle, fine-tuned by devices that keep
# their data. Register it with
#   flotilla tasks create task.yaml --base base.bundle
# The uncommented fields are required or differ from the default; each commented line shows a
# default. The coordinator writes every value into the task it signs (flotilla tasks show ${options.taskId}).
taskId: ${options.taskId}
description: Rotated MNIST digits; FFA-LoRA on the dense layers of an MLP pre-trained on upright digits

adapter:
  # lora (A and B trained), ffa-lora (A frozen, drawn from the shared seed; only B is trained,
  # so averaging B is exact), bias, or full (the whole layer: the accuracy ceiling, many bytes).
  mode: ${adapter.mode}
  # Dense layers of base.bundle to adapt (flotilla models export lists them with their sizes).
  targetModules: [${adapter.targetModules.join(', ')}]
  r: ${adapter.r} # LoRA rank (default 8)
  alpha: ${adapter.alpha} # the update is scaled by alpha / r (default 8)
  # seed: 0 # draws the frozen A; every device derives the same one

rounds:
  # Updates a round aims for. Over-selection asks ceil(${options.goalCount} x 1.3) = ${selected} devices.
  goalCount: ${options.goalCount}
  # overSelection: 1.3 # devices selected = ceil(goalCount x overSelection)
  # minGoalFraction: 0.8 # a round starts once this share of goalCount has checked in ...
  # selectionTimeoutMs: 30000 # ... within this time; else it is abandoned
  # minReports: ${minReports} # quorum at the deadline; default floor(0.8 x goalCount / 1.3), at least 1
  # reportingDeadlineMs: 60000 # from the plan to the reporting deadline
  # retryAfterMs: 5000 # devices not selected check in again after about this long
  maxRounds: 10 # rounds to run; 0 = no end (default 0)
  training:
    learningRate: 0.03 # required: no value suits every model
    optimizer: adam # default sgd
    # epochs: 1
    # batchSize: ${BATCH_SIZE}
    # fedProxMu: 0 # FedProx proximal term; 0 = plain local training
  maxSteps: ${MAX_STEPS} # optimizer steps a device may take per round (default 200)
  # maxSeconds: 60
  # validationTolerance: 0.05 # a device whose local holdout loss rises more sends nothing
  # quantization: none # int8 for 8-bit uploads

policy:
  clipNorm: 1 # required: every delta is clipped to this L2 norm before it leaves the device
  # allowedModules: [${adapter.targetModules.join(', ')}] # default: adapter.targetModules
  # maxBlobBytes: ${defaultMaxBlobBytes(adapter, shapes) ?? ''} # default: a float32 delta of the adapter + 64 KiB
  # maxExamplesPerUpdate: ${MAX_STEPS * BATCH_SIZE} # default maxSteps x batchSize
  # weighting: { rule: examples } # FedAvg weights; or equal, or capped
  # strategy: { name: fedavg } # or fedadam, fedyogi, median, trimmed-mean, krum, multi-krum, bulyan, ...
  # audit: {} # drift audit thresholds (docs/drift-audit.md)
  # dp: { noiseMultiplier: 1.0, delta: 1.0e-5, epsilonBudget: 10 } # differential privacy (docs/privacy.md)
`;
}

export function flotillaYaml(options: StarterOptions): string {
  return `# Settings every flotilla command of this project reads (export FLOTILLA_CONFIG="$PWD/flotilla.yaml").
# It holds the operator token: keep it private (it is mode 0600 and listed in .gitignore).
stateDir: .flotilla
host: 127.0.0.1
port: ${options.port}
coordinatorUrl: http://127.0.0.1:${options.port}
operatorToken: ${options.operatorToken}
`;
}

export const GITIGNORE = `# Written by flotilla init: state, device keys and the operator token stay on this machine.
.flotilla/
keys/
flotilla.yaml
`;

export function readme(options: StarterOptions): string {
  const { taskId, devices } = options;
  const shard = (i: number) => `${i}/${devices}`;
  const deviceLines = Array.from(
    { length: devices },
    (_, i) =>
      `flotilla device --task ${taskId} --device-id device-${i} --key-file keys/device-${i}.json --data mnist-rotated --shard ${shard(i)}`,
  );
  const enrollLines = Array.from(
    { length: devices },
    (_, i) => `flotilla devices enroll --device-id device-${i} --key-file keys/device-${i}.json`,
  );
  return `# ${taskId}: a Flotilla operator project

Written by \`flotilla init\`. A coordinator, ${devices} devices on this machine, and a task that
fine-tunes an FFA-LoRA adapter for handwritten digits rotated by 35°, on a base model that only saw
upright ones.

| File | What it is |
| --- | --- |
| \`task.yaml\` | the task: adapter, rounds, policy; commented, every omitted field takes its default |
| \`base.bundle\` | the base model (${options.base.bytes} bytes, sha256 \`${options.base.digest}\`), written by \`${options.base.exportCommand}\` |
| \`flotilla.yaml\` | where the coordinator listens, its state directory (\`.flotilla/\`) and the operator token: private |
| \`.gitignore\` | keeps \`.flotilla/\`, \`keys/\` and \`flotilla.yaml\` out of version control |

Run every command from this directory. \`flotilla\` stands for \`${options.flotillaCommand}\`
(the checkout that wrote this project), and each command reads \`flotilla.yaml\`:

\`\`\`sh
export FLOTILLA_CONFIG="$PWD/flotilla.yaml"
\`\`\`

## 1. Start the coordinator

In a terminal of its own; it runs until Ctrl-C. With no \`REDIS_URL\` it starts a private
redis-server under \`.flotilla/redis\`; \`--with-worker\` runs the aggregation worker in the same
process.

\`\`\`sh
flotilla coordinator --with-worker
\`\`\`

The dashboard is at http://127.0.0.1:${options.port}/dashboard (paste the operator token from
\`flotilla.yaml\`).

## 2. Register the task

Uploads \`base.bundle\` and registers \`task.yaml\`; round 1 opens at once.

\`\`\`sh
flotilla tasks create task.yaml --base base.bundle
\`\`\`

## 3. Enroll the devices and run them

Each device has an ed25519 key (created, mode 0600, under \`keys/\`) whose public half the
operator enrolls:

\`\`\`sh
${enrollLines.join('\n')}
\`\`\`

Then each device in a terminal of its own. A device trains on its shard of rotated MNIST, which
never leaves it, and sends a clipped, signed delta; it runs until Ctrl-C (\`--rounds N\` stops it
after N rounds):

\`\`\`sh
${deviceLines.join('\n')}
\`\`\`

A device on another machine enrolls itself instead: \`flotilla devices token\` here prints a
one-time token, and the device adds \`--enroll-token <token>\` (with \`FLOTILLA_URL\` set to this
coordinator's address) to its \`flotilla device\` command.

## 4. Watch the rounds

Each committed round promotes a new adapter version, signed by the coordinator:

\`\`\`sh
flotilla adapters list --task ${taskId}
flotilla audit verify .flotilla/audit/round-log.jsonl
\`\`\`

\`audit verify\` checks the signed round log: every round, who took part (by pseudonym), what
was clipped or refused, what was promoted and why.

## Changing things

- Another model: \`flotilla models export --help\` writes a bundle from a built-in architecture
  (mlp, cnn, char-rnn) or from a tfjs \`model.json\`, and lists its dense layers for
  \`adapter.targetModules\`. A task's base model is fixed: register a new task (another \`taskId\`).
- Your own devices: the \`@flotilla/client\` library (the Flotilla README's "Library" section).
`;
}
