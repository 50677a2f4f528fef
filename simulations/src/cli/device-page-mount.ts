import { join, resolve } from 'node:path';
import { ConfigError } from './config.js';

/** Where `flotilla coordinator --device-page` serves the browser device page. */
export const DEVICE_PAGE_PREFIX = '/device/';

/**
 * Whether the device page is asked for: the flag, else FLOTILLA_DEVICE_PAGE (1/true or 0/false).
 * Any other value is a usage error rather than a silent "off".
 */
export function devicePageWanted(flag: boolean | undefined, env: string | undefined): boolean {
  if (flag === true) return true;
  if (env === undefined || env === '' || env === '0' || env === 'false') return false;
  if (env === '1' || env === 'true') return true;
  throw new ConfigError(`FLOTILLA_DEVICE_PAGE: expected 1, true, 0 or false, got "${env}"`);
}

/**
 * Builds the browser device page (simulations/web) into `<stateDir>/device-page` and returns the
 * mount that serves it. Built at every start, so the page always matches the device library of
 * this checkout; esbuild takes a few seconds.
 */
export async function buildDevicePageMount(stateDir: string): Promise<{ urlPrefix: string; dir: string }> {
  // Loaded only when asked for: esbuild and the page sources stay out of every other command.
  const { buildDevicePage } = await import('../../web/build.js');
  const built = await buildDevicePage({ outDir: join(resolve(stateDir), 'device-page'), minify: true });
  return { urlPrefix: DEVICE_PAGE_PREFIX, dir: built.outDir };
}
