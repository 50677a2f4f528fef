import type { AdapterManifest } from '@flotilla/protocol';

/** Every blob a manifest makes available to devices (full adapter, delta, adapter config). */
export function manifestBlobDigests(manifest: AdapterManifest): string[] {
  const sets = [manifest.adapter, ...(manifest.delta ? [manifest.delta] : [])];
  return [
    ...sets.flatMap((set) => [set.f32.digest, set.f16.digest, ...(set.int8 ? [set.int8.digest] : [])]),
    manifest.adapterConfigDigest,
  ];
}
