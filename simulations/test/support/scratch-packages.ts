// Helpers of the package-install test: build and pack the publishable packages once, install the
// tarballs into scratch projects outside the monorepo, and run plain `node` there.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const PUBLISHED = ['protocol', 'client', 'coordinator'] as const;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command args` in `cwd` and resolves with its exit code and output (never rejects on a
 * non-zero exit). A run past `timeoutMs` is killed by its pid and reported as code null.
 */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new Error(`could not start ${command}`));
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), options.timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The environment of a plain-node child: no NODE_OPTIONS (no loader, no export condition) and no
 * REDIS_URL of the test run, then `extra`.
 */
export function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.REDIS_URL;
  return { ...env, ...extra };
}

/** `npm run build` (incremental) then `npm pack` of each published package into `into`. */
export async function buildAndPack(into: string): Promise<Record<(typeof PUBLISHED)[number], string>> {
  const build = await run(process.execPath, ['scripts/build-packages.mjs'], {
    cwd: REPO_ROOT,
    timeoutMs: 600_000,
  });
  if (build.code !== 0) throw new Error(`build failed (${build.code}):\n${build.stdout}\n${build.stderr}`);
  const tarballs: Partial<Record<(typeof PUBLISHED)[number], string>> = {};
  for (const name of PUBLISHED) {
    // The build just ran; --ignore-scripts skips the prepack that would run it again.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', into], {
      cwd: join(REPO_ROOT, name),
      timeoutMs: 120_000,
    });
    const file = pack.stdout.trim().split('\n').pop() ?? '';
    if (pack.code !== 0 || !readdirSync(into).includes(file))
      throw new Error(`npm pack ${name} failed (${pack.code}):\n${pack.stdout}\n${pack.stderr}`);
    tarballs[name] = join(into, file);
  }
  const { protocol, client, coordinator } = tarballs;
  if (!protocol || !client || !coordinator) throw new Error('a package was not packed');
  return { protocol, client, coordinator };
}

/**
 * `npm install` in a scratch project. Third-party dependencies come from the npm cache when it
 * has them (--prefer-offline) and from the registry otherwise; the optional tfjs-node (which
 * downloads libtensorflow) is left out. A failure says what npm said.
 */
export async function npmInstall(cwd: string): Promise<void> {
  const result = await run(
    'npm',
    ['install', '--prefer-offline', '--omit=optional', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd, timeoutMs: 600_000, env: plainEnv() },
  );
  if (result.code !== 0)
    throw new Error(
      `npm install in ${cwd} failed (exit ${result.code}). It needs the npm registry, or an npm cache ` +
        `holding the packages' third-party dependencies:\n${result.stderr.slice(-4000)}`,
    );
}
