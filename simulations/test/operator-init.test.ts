// `flotilla init` (issue 18): the generated operator project runs as its README says. The test
// reads the README's shell blocks and runs every `flotilla` line in order, in the project
// directory, with the CLI of this checkout: the coordinator and the devices in the background,
// the rest to completion; then it waits for `adapters list` to show a committed round and runs
// `audit verify` on the round log.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskDefinitionSchema, sha256Hex } from '@flotilla/protocol';
import { TaskFileSchema } from '../src/cli/commands/tasks.js';
import { stopChild } from './support/index.js';

const BIN = fileURLToPath(new URL('../bin/flotilla.mjs', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-init-'));
const project = join(scratch, 'operator');
const background: ChildProcess[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The environment of the README's commands: its FLOTILLA_CONFIG, none of the test run's settings. */
function projectEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FLOTILLA_CONFIG: join(project, 'flotilla.yaml') };
  for (const name of Object.keys(env))
    if (name === 'REDIS_URL' || (name.startsWith('FLOTILLA_') && name !== 'FLOTILLA_CONFIG'))
      delete env[name];
  return env;
}

/** Runs `flotilla args` in the project to completion. */
function flotilla(
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? project, env: projectEnv() });
    child.once('error', (error) => resolve({ code: null, out: error.message }));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(
      () => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'),
      options.timeoutMs ?? 180_000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Starts `flotilla args` in the background; resolves once its output matches `ready`. */
function flotillaInBackground(args: string[], ready: RegExp): Promise<() => string> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: project, env: projectEnv() });
  background.push(child);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`flotilla ${args.join(' ')}: not ready: ${out}`)),
      120_000,
    );
    const check = () => {
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(() => out);
      }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`flotilla ${args.join(' ')} exited ${code}: ${out}`));
    });
  });
}

afterAll(async () => {
  // Devices first, then the coordinator (last started first).
  for (const child of background.reverse()) await stopChild(child);
  rmSync(scratch, { recursive: true, force: true });
});

describe('flotilla init', () => {
  it("writes a project whose README's commands start a coordinator, enroll and run devices, and commit a round", async () => {
    const port = await freePort();
    const init = await flotilla(['init', project, '--port', String(port)], { cwd: scratch });
    expect(init.code, init.out).toBe(0);

    // The task file uses the defaults: it parses as a task file and as a task once a base is given.
    const taskFile = TaskFileSchema.parse(parseYaml(readFileSync(join(project, 'task.yaml'), 'utf8')));
    const base = readFileSync(join(project, 'base.bundle'));
    const task = TaskDefinitionSchema.parse({
      ...taskFile,
      baseModel: { digest: sha256Hex(base), format: 'tfjs-layers-bundle', bytes: base.length },
      moduleShapes: { hidden: { in: 784, out: 128 }, out: { in: 128, out: 10 } },
    });
    expect(task.adapter).toMatchObject({ mode: 'ffa-lora', targetModules: ['hidden', 'out'] });
    expect(task.rounds).toMatchObject({ goalCount: 2, minReports: 1, overSelection: 1.3 });
    expect(statSync(join(project, 'flotilla.yaml')).mode & 0o777).toBe(0o600);

    const readme = readFileSync(join(project, 'README.md'), 'utf8');
    expect(readme).toContain(sha256Hex(base));
    const lines = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) =>
      (block[1] ?? '').split('\n').filter((line) => line.startsWith('flotilla ')),
    );
    const watch = lines.filter((line) => /^flotilla (adapters|audit) /.test(line));
    expect(watch).toEqual([
      'flotilla adapters list --task digits',
      'flotilla audit verify .flotilla/audit/round-log.jsonl',
    ]);
    let devices = 0;
    for (const line of lines.filter((l) => !watch.includes(l))) {
      const args = line.split(' ').slice(1);
      if (args[0] === 'coordinator') {
        await flotillaInBackground(args, /coordinator listening on /);
      } else if (args[0] === 'device') {
        await flotillaInBackground(args, /connected to /);
        devices++;
      } else {
        const ran = await flotilla(args);
        expect(ran.code, `${line}\n${ran.out}`).toBe(0);
      }
    }
    expect(devices).toBe(3);

    // Watch: the first round commits and promotes v1.
    const [list, verify] = watch.map((line) => line.split(' ').slice(1));
    let listed = '';
    for (let i = 0; i < 120 && !/^v1 /m.test(listed); i++) {
      listed = (await flotilla(list ?? [])).out;
      if (!/^v1 /m.test(listed)) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(listed).toMatch(/^v1 {2}parent v0 {2}digits:\d+ {2}fedavg\/ffa {2}\d+ updates/m);
    const verified = await flotilla(verify ?? []);
    expect(verified.code, verified.out).toBe(0);
    expect(verified.out).toContain('PASS');
  }, 600_000);
});
