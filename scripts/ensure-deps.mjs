#!/usr/bin/env node
// Makes a fresh clone runnable with only Node: installs npm dependencies when they are missing
// or older than the lock file, and (with --redis) makes sure redis-server is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

function run(cmd, args) {
  const result = spawnSync(cmd, args, { stdio: 'inherit' });
  return result.status === 0;
}

const lock = 'package-lock.json';
const marker = 'node_modules/.package-lock.json';
const stale =
  !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);
if (stale) {
  console.error('[flotilla] installing npm dependencies…');
  const ok = existsSync(lock)
    ? run('npm', ['ci', '--no-audit', '--no-fund'])
    : run('npm', ['install', '--no-audit', '--no-fund']);
  if (!ok) {
    console.error('[flotilla] npm install failed; see the output above.');
    process.exit(1);
  }
}

if (process.argv.includes('--redis') && !process.env.REDIS_URL) {
  const have = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!have) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
    if (isRoot && hasApt) {
      console.error('[flotilla] redis-server is missing; installing Debian package redis-server…');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const ok =
        spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env }).status === 0 &&
        spawnSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit', env }).status ===
          0;
      if (!ok) {
        console.error('[flotilla] could not install redis-server with apt-get.');
        process.exit(1);
      }
    } else {
      console.error(
        '[flotilla] redis-server is required and was not found on PATH.\n' +
          '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y redis-server\n' +
          '  macOS:         brew install redis\n' +
          '  or set REDIS_URL=redis://host:6379 to use a server you already run.',
      );
      process.exit(1);
    }
  }
}
