import { canonicalJson } from './canonical-json.js';
import { sha256Hex } from './digest.js';
import { utf8 } from './encoding.js';
import type { AdapterManifest } from './messages/manifest.js';

/** The content address of a manifest: SHA-256 of its canonical JSON (what `adapter:promoted` names). */
export function manifestDigest(manifest: AdapterManifest): string {
  return sha256Hex(utf8(canonicalJson(manifest)));
}
