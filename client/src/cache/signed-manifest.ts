import {
  FlotillaError,
  SIGNING_DOMAINS,
  SignedManifestSchema,
  verifyPayload,
  type AdapterManifest,
} from '@flotilla/protocol';

export interface VerifyManifestOptions {
  /** The pinned coordinator public key (base64); the only key a manifest may be signed with. */
  coordinatorKey: string;
  /** The task the device follows; a manifest of another task is refused. */
  taskId: string;
  /** When set, the manifest must be of exactly this version. */
  version?: number;
}

/**
 * Validates an untrusted manifest document (as fetched from the coordinator) and checks its
 * signature in the manifest domain against the pinned coordinator key. Throws BAD_REQUEST for a
 * malformed or mismatched document and BAD_SIGNATURE for a forged or altered one.
 */
export function verifySignedManifest(raw: unknown, options: VerifyManifestOptions): AdapterManifest {
  const parsed = SignedManifestSchema.safeParse(raw);
  if (!parsed.success)
    throw new FlotillaError(
      'BAD_REQUEST',
      `malformed adapter manifest: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  const signed = parsed.data;
  if (signed.coordinatorKey !== options.coordinatorKey)
    throw new FlotillaError(
      'BAD_SIGNATURE',
      'manifest is signed by a key other than the pinned coordinator key',
    );
  if (!verifyPayload(SIGNING_DOMAINS.manifest, signed.manifest, signed.signature, options.coordinatorKey))
    throw new FlotillaError(
      'BAD_SIGNATURE',
      `manifest of version ${signed.manifest.version} has an invalid signature`,
    );
  if (signed.manifest.taskId !== options.taskId)
    throw new FlotillaError(
      'BAD_REQUEST',
      `manifest belongs to task ${signed.manifest.taskId}, not ${options.taskId}`,
    );
  if (options.version !== undefined && signed.manifest.version !== options.version)
    throw new FlotillaError(
      'BAD_REQUEST',
      `asked for manifest version ${options.version}, got ${signed.manifest.version}`,
    );
  if (signed.manifest.parentVersion >= signed.manifest.version)
    throw new FlotillaError(
      'BAD_REQUEST',
      `manifest ${signed.manifest.version} names a parent that is not older`,
    );
  return signed.manifest;
}
