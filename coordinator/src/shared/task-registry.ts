import {
  FlotillaError,
  SignedTaskSchema,
  SIGNING_DOMAINS,
  TaskDefinitionSchema,
  describeTaskIssues,
  defaultMaxExamplesPerUpdate,
  signPayload,
  toBase64,
  type SignedTask,
  type SigningKeyPair,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';
import { ParsedTextCache } from './parsed-text-cache.js';

/** Signed tasks as parsed lately: every submission and check-in reads its task. */
const signedTasks = new ParsedTextCache((text): SignedTask => SignedTaskSchema.parse(JSON.parse(text)));

/** A stored signed task from its JSON text (parsed once per text); null when absent. */
export function parseSignedTask(raw: string | null): SignedTask | null {
  return raw === null ? null : signedTasks.get(raw);
}

export interface TaskRegistryOptions extends RedisStoreOptions {
  /** The coordinator key that signs tasks (`flotilla/v1/task` domain). */
  signingKey: SigningKeyPair;
}

/** Tasks in Redis, each stored as the SignedTask devices fetch. */
export class TaskRegistry extends RedisStore {
  private readonly signingKey: SigningKeyPair;

  constructor(options: TaskRegistryOptions) {
    super(options);
    this.signingKey = options.signingKey;
  }

  /**
   * Validates, signs and stores a new task (BAD_REQUEST if the id exists), then announces it on
   * `${prefix}:task-created`. Prefer `registerTask` (server), which also checks module shapes and
   * the base model blob. An absent `policy.maxExamplesPerUpdate` is stored as its default.
   */
  async createTask(input: TaskDefinitionInput): Promise<SignedTask> {
    const parsed = TaskDefinitionSchema.safeParse(input);
    if (!parsed.success)
      throw new FlotillaError('BAD_REQUEST', `invalid task: ${describeTaskIssues(parsed.error)}`);
    // The default examples cap is written into the signed task, so devices and auditors read the
    // number the coordinator enforces instead of re-deriving it.
    const task = {
      ...parsed.data,
      policy: {
        ...parsed.data.policy,
        maxExamplesPerUpdate:
          parsed.data.policy.maxExamplesPerUpdate ?? defaultMaxExamplesPerUpdate(parsed.data.rounds),
      },
    };
    const signed: SignedTask = {
      task,
      coordinatorKey: toBase64(this.signingKey.publicKey),
      signature: signPayload(SIGNING_DOMAINS.task, task, this.signingKey.secretKey),
    };
    const created = await this.redis.set(this.keys.task(task.taskId), JSON.stringify(signed), 'NX');
    if (created !== 'OK') throw new FlotillaError('BAD_REQUEST', `task ${task.taskId} already exists`);
    // Devices fetch the base model by digest: it is readable by the fleet (blob-access.ts).
    await this.redis
      .multi()
      .zadd(this.keys.tasks(), task.createdAt, task.taskId)
      .sadd(this.keys.blobFleetReadable(), task.baseModel.digest)
      .exec();
    // A running coordinator opens the task's first round when it hears of it.
    await this.redis.publish(this.keys.tasksChannel(), task.taskId);
    return signed;
  }

  async getTask(taskId: string): Promise<SignedTask | null> {
    return parseSignedTask(await this.redis.get(this.keys.task(taskId)));
  }

  async listTasks(): Promise<SignedTask[]> {
    const ids = await this.redis.zrange(this.keys.tasks(), 0, -1);
    const tasks = await Promise.all(ids.map((id) => this.getTask(id)));
    return tasks.filter((t): t is SignedTask => t !== null);
  }
}
