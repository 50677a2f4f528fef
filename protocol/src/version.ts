/**
 * Wire protocol version. A device and a coordinator talk only when their major versions match;
 * the coordinator refuses any other with VERSION_MISMATCH during the handshake.
 */
export const PROTOCOL_VERSION = '1.0';

export function protocolMajor(version: string): number {
  const major = Number(version.split('.')[0]);
  return Number.isInteger(major) ? major : -1;
}

export function isCompatibleProtocol(version: string): boolean {
  return protocolMajor(version) === protocolMajor(PROTOCOL_VERSION);
}
