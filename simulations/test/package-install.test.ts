// The published packages, as a user gets them: `npm pack` of @flotilla/protocol, client and
// coordinator, installed from the tarballs into scratch projects outside the monorepo. From plain
// `node` (no tsx, no TypeScript anywhere in the project) a coordinator and a worker start from the
// built coordinator package and a device built from the client package completes a round; a
// second project type-checks the README's library example with `tsc --strict`.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type TaskDefinitionInput } from '@flotilla/protocol';
import { createCoordinator } from '@flotilla/coordinator/server';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import {
  buildAndPack,
  mintEnrollmentToken,
  mlpTaskDefinition,
  npmInstall,
  plainEnv,
  PUBLISHED,
  REPO_ROOT,
  run,
  stopChild,
} from './support/index.js';
import { launchChromium } from '../../test-support/chromium.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/package-install/', import.meta.url));
const OPERATOR = 'package-install-operator-token-0123';
const TASK = 'pack-task';
const rootPackage = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
};

interface BundlePageResult {
  events: string[];
  backend: string | null;
  stopped: string | null;
  error: string | null;
}

/** One device per round on the fixtures' 4-feature, 3-class model (base-model.mjs). */
function smallTask(digest: string, bytes: number): TaskDefinitionInput {
  return mlpTaskDefinition(
    { digest, bytes },
    { taskId: TASK, rounds: { maxSteps: 10 }, training: { batchSize: 10 } },
  );
}

const scratch = mkdtempSync(join(tmpdir(), 'flotilla-pack-'));
let tarballs: Awaited<ReturnType<typeof buildAndPack>>;
const children: ChildProcess[] = [];

/** Starts `node <script>` (plain) and resolves with its JSON log lines once one has `msg`. */
function startService(script: string, cwd: string, args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [script, ...args], {
    cwd,
    env: plainEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    const parts = text.split('\n');
    text = parts.pop() ?? '';
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const waitFor = (msg: string, timeoutMs = 60_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const started = Date.now();
      const poll = () => {
        const found = lines.find((line) => line.msg === msg);
        if (found) return resolve(found);
        if (child.exitCode !== null)
          return reject(new Error(`${script} exited ${child.exitCode}: ${errors}`));
        if (Date.now() - started > timeoutMs)
          return reject(new Error(`no "${msg}" from ${script}: ${errors}`));
        setTimeout(poll, 100);
      };
      poll();
    });
  return { child, lines, waitFor };
}

/** Builds the test MLP with the installed packages (base-model.mjs) into `project/file`. */
async function makeBaseModel(
  project: string,
  file: string,
): Promise<{ base: Uint8Array<ArrayBuffer>; digest: string }> {
  const made = await run(process.execPath, ['base-model.mjs', file], {
    cwd: project,
    timeoutMs: 120_000,
    env: plainEnv(),
  });
  expect(made.code, made.stderr).toBe(0);
  const base = new Uint8Array(readFileSync(join(project, file)));
  return { base, digest: sha256Hex(base) };
}

function writeProject(dir: string, dependencies: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify(
      { name: 'scratch', version: '1.0.0', private: true, type: 'module', dependencies },
      null,
      2,
    ),
  );
}

/** The plain-node project: the three tarballs and tfjs (for its base-model script), nothing else. */
const project = join(scratch, 'device-project');

beforeAll(async () => {
  tarballs = await buildAndPack(scratch);
  writeProject(project, {
    '@flotilla/protocol': `file:${tarballs.protocol}`,
    '@flotilla/client': `file:${tarballs.client}`,
    '@flotilla/coordinator': `file:${tarballs.coordinator}`,
    '@tensorflow/tfjs': '4.22.0',
  });
  for (const file of ['base-model.mjs', 'device.mjs'])
    copyFileSync(join(FIXTURES, file), join(project, file));
  await npmInstall(project);
}, 900_000);

// Children stop side by side: one after another, three slow shutdowns on a loaded machine
// outlast the hook's timeout.
afterAll(async () => {
  await Promise.all(children.map(stopChild));
  rmSync(scratch, { recursive: true, force: true });
});

describe('published packages (npm pack, installed outside the monorepo)', () => {
  it('ship JavaScript, declarations and run-time assets, never TypeScript sources', async () => {
    const contents: Record<string, string[]> = {};
    for (const name of PUBLISHED) {
      const listed = await run('tar', ['-tzf', tarballs[name]], { cwd: scratch, timeoutMs: 30_000 });
      contents[name] = listed.stdout.split('\n').filter(Boolean);
      const sources = contents[name].filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
      expect(sources, `${name} ships TypeScript sources`).toEqual([]);
      expect(contents[name]).toContain('package/dist/index.js');
      expect(contents[name]).toContain('package/dist/index.d.ts');
      expect(
        contents[name].some(
          (file) => file.includes('.test.') || file.includes('-golden.') || file.includes('tsbuildinfo'),
        ),
      ).toBe(false);
    }
    expect(contents.coordinator).toEqual(
      expect.arrayContaining([
        'package/dist/shared/redis-supervisor.sh',
        'package/dist/shared/ts-worker-boot.mjs',
        'package/dist/worker/job/compute-thread.js',
        'package/dist/server/dashboard/assets/dashboard.html',
        'package/dist/server/dashboard/assets/dashboard.js',
      ]),
    );
    expect(contents.client).toEqual(
      expect.arrayContaining([
        'package/dist/bundle/flotilla-device.js',
        'package/dist/bundle/wasm/tfjs-backend-wasm.wasm',
        'package/dist/bundle/wasm/tfjs-backend-wasm-simd.wasm',
      ]),
    );
  });

  it('a plain-node project runs a coordinator, a worker and a device that completes a round', async () => {
    // No TypeScript runner anywhere: whatever runs below is the packages' JavaScript.
    expect(existsSync(join(project, 'node_modules/tsx'))).toBe(false);
    expect(existsSync(join(project, 'node_modules/typescript'))).toBe(false);

    const bin = join(project, 'node_modules/@flotilla/coordinator/dist');
    const state = join(project, 'state');
    // No REDIS_URL: the coordinator starts its own redis-server through dist/shared/redis-supervisor.sh.
    const coordinator = startService(
      join(bin, 'server/main.js'),
      project,
      ['--port', '0', '--state-dir', state, '--operator-token', OPERATOR],
      { LOG_LEVEL: 'info' },
    );
    const redis = await coordinator.waitFor('embedded redis-server started');
    const listening = await coordinator.waitFor('coordinator listening');
    const url = String(listening.url);
    const worker = startService(join(bin, 'worker/main.js'), project, [], {
      REDIS_URL: String(redis.url),
      FLOTILLA_STATE_DIR: state,
      LOG_LEVEL: 'info',
    });
    await worker.waitFor('worker ready');

    // The dashboard page is an asset of the built package.
    const dashboard = await fetch(`${url}/dashboard`);
    expect(dashboard.status).toBe(200);
    expect(await dashboard.text()).toContain('<html');

    const { base, digest } = await makeBaseModel(project, 'base.bundle');
    const operator = { authorization: `Bearer ${OPERATOR}` };
    expect(
      (await fetch(`${url}/blobs/${digest}`, { method: 'PUT', headers: operator, body: base })).status,
    ).toBe(201);
    const created = await fetch(`${url}/api/admin/tasks`, {
      method: 'POST',
      headers: { ...operator, 'content-type': 'application/json' },
      body: JSON.stringify(smallTask(digest, base.byteLength)),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const token = () => mintEnrollmentToken(url, OPERATOR);
    const events = (out: string) =>
      out
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);

    // Data of the wrong shape (5 features for a 4-input model) fails when the device starts.
    const misfit = await run(process.execPath, ['device.mjs', url, TASK, 'misfit-1', await token(), '5'], {
      cwd: project,
      timeoutMs: 120_000,
      env: plainEnv(),
    });
    expect(misfit.code, misfit.stderr).toBe(3);
    const failed = events(misfit.stdout).find((e) => e.event === 'start-failed');
    expect(failed?.code).toBe('BAD_REQUEST');
    expect(String(failed?.message)).toContain('data.train.featureShape is [5]');
    expect(String(failed?.message)).toContain('[4]');

    const device = await run(
      process.execPath,
      ['device.mjs', url, TASK, 'plain-node-1', await token(), '4'],
      {
        cwd: project,
        timeoutMs: 240_000,
        env: plainEnv(),
      },
    );
    expect(device.code, `${device.stdout}\n${device.stderr}`).toBe(0);
    const seen = events(device.stdout);
    const accepted = seen.find((e) => e.event === 'accepted');
    expect(accepted?.roundId).toBeTypeOf('string');
    // Installed from the tarballs, the wasm backend finds its .wasm files from the client's dist.
    expect(accepted?.backend).toBe('wasm');
    expect(seen).toContainEqual({ event: 'adapter', version: 1 });
    expect(seen).toContainEqual({ event: 'stopped', reason: 'stopped' });
    // The round committed: version 1 is promoted and signed.
    const manifest = (await (await fetch(`${url}/api/tasks/${TASK}/adapters/latest/manifest`)).json()) as {
      manifest: { version: number; taskId: string };
    };
    expect(manifest.manifest).toMatchObject({ version: 1, taskId: TASK });

    await stopChild(worker.child);
    await stopChild(coordinator.child);
    expect(coordinator.child.exitCode).toBe(0);
  }, 900_000);

  it('a page that imports only the published browser bundle enrolls, trains on wasm and is accepted', async () => {
    const stateDir = join(scratch, 'browser-state');
    // The coordinator (from the sources) serves the installed bundle directory and a bare page.
    const coordinator = await createCoordinator({
      redisUrl: testRedisUrl(),
      prefix: uniquePrefix('bundle'),
      stateDir,
      operatorToken: OPERATOR,
      staticMounts: [
        { urlPrefix: '/flotilla/', dir: join(project, 'node_modules/@flotilla/client/dist/bundle') },
        { urlPrefix: '/page/', dir: FIXTURES },
      ],
    });
    const browser = await launchChromium();
    try {
      const { base, digest } = await makeBaseModel(project, 'browser.bundle');
      await coordinator.blobs.put(digest, base);
      await coordinator.createTask(smallTask(digest, base.byteLength));
      const { token } = await coordinator.devices.createEnrollmentToken({});
      const page = await browser.newPage();
      const failed: string[] = [];
      page.on('pageerror', (error) => failed.push(error.message));
      const query = new URLSearchParams({ taskId: TASK, deviceId: 'bundle-page-1', token });
      await page.goto(`${coordinator.url}/page/bundle-page.html?${query.toString()}`);
      await page.waitForFunction(
        () => {
          const r = (window as unknown as { result?: BundlePageResult }).result;
          return r !== undefined && (r.stopped !== null || r.error !== null);
        },
        undefined,
        { timeout: 120_000, polling: 250 },
      );
      const result = await page.evaluate(() => (window as unknown as { result: BundlePageResult }).result);
      expect(failed).toEqual([]);
      expect(result.error).toBeNull();
      expect(result.backend).toBe('wasm');
      expect(result.events).toEqual([`accepted ${TASK}:1`]);
      expect(result.stopped).toBe('max-rounds');
    } finally {
      await browser.close();
      await coordinator.close();
    }
  }, 300_000);

  it("type-checks the README's library example with tsc --strict against the installed packages", async () => {
    const project = join(scratch, 'types-project');
    writeProject(project, {
      '@flotilla/protocol': `file:${tarballs.protocol}`,
      '@flotilla/client': `file:${tarballs.client}`,
      typescript: rootPackage.devDependencies.typescript ?? 'latest',
      // The example is a Node program (node:fs, process): it asks for Node's types, and only those.
      '@types/node': rootPackage.devDependencies['@types/node'] ?? 'latest',
    });
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const library = readme.slice(readme.indexOf('\n## Library\n'));
    const example = /```ts\n([\s\S]*?)```/.exec(library)?.[1];
    expect(example, 'README ## Library has a ts example').toBeDefined();
    writeFileSync(join(project, 'example.ts'), example ?? '');
    const tsconfig = (skipLibCheck: boolean) =>
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          noEmit: true,
          skipLibCheck,
        },
        files: ['example.ts'],
      });
    await npmInstall(project);
    const tsc = () =>
      run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], {
        cwd: project,
        timeoutMs: 300_000,
        env: plainEnv(),
      });
    // As a project usually compiles (skipLibCheck, as `tsc --init` writes it): no error at all.
    writeFileSync(join(project, 'tsconfig.json'), tsconfig(true));
    const usual = await tsc();
    expect(usual.code, usual.stdout + usual.stderr).toBe(0);
    // Checking every declaration file too: none of the errors is in Flotilla's declarations
    // (tfjs-layers' own .d.ts do not pass TypeScript 5.9's checks; that is theirs).
    writeFileSync(join(project, 'tsconfig.json'), tsconfig(false));
    const strict = await tsc();
    const ours = strict.stdout.split('\n').filter((line) => /@flotilla\/|example\.ts/.test(line));
    expect(ours).toEqual([]);
  }, 900_000);
});
