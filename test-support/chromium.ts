import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium, headless, for the tests of pages (never a downloaded browser): no sandbox
 * (containers), no GPU, and none of the background traffic that would reach the network.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches /usr/bin/chromium; close it with `browser.close()` (it ends the browser's processes). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}
