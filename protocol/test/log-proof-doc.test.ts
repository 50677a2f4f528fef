// docs/auditing.md ("A device's proof, checked by hand") walks one update's inclusion proof
// against a signed tree head. This test reads the values from the doc, redoes each step with
// node:crypto and tweetnacl (not Flotilla's hashing or signing), and checks that the library's
// own check (the one the client library runs) accepts the same proof.
import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex } from '../src/encoding.js';
import { checkLogInclusion } from '../src/messages/log-proof.js';
import { RoundLogRecordSchema } from '../src/round-log/record.js';
import { TreeHeadSchema } from '../src/round-log/tree-head.js';
import { auditingDocSample } from './support/index.js';

const KEY = '6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=';
describe("docs/auditing.md: a device's inclusion proof checked by hand", () => {
  const { names, value } = auditingDocSample("### A device's proof, checked by hand");
  const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest('hex');

  it('every step is what SHA-256 and ed25519 give', () => {
    expect(names).toEqual(['record', 'h2', 'n01', 'root', 'treeHead', 'signature']);
    expect(value('h2')).toBe(sha256(Buffer.from([0]), Buffer.from(value('record'), 'utf8')));
    expect(value('root')).toBe(
      sha256(Buffer.from([1]), Buffer.from(value('n01'), 'hex'), Buffer.from(value('h2'), 'hex')),
    );
    const head = JSON.parse(value('treeHead')) as { rootHash: string; keyId: string; treeSize: number };
    expect(head).toMatchObject({ rootHash: value('root'), keyId: KEY, treeSize: 3 });
    const digest = createHash('sha256')
      .update('flotilla/v1/tree-head\u0000', 'utf8')
      .update(value('treeHead'), 'utf8')
      .digest();
    expect(nacl.sign.detached.verify(digest, fromBase64(value('signature')), fromBase64(KEY))).toBe(true);
  });

  it('is a proof the library accepts, and rejects once any value changes', () => {
    const record = RoundLogRecordSchema.parse(JSON.parse(value('record')));
    const treeHead = TreeHeadSchema.parse(JSON.parse(value('treeHead')));
    const leaf = { record, leafHash: value('h2') };
    const inclusion = {
      leafIndex: 2,
      proof: [value('n01')],
      head: { treeHead, signature: value('signature') },
    };
    expect(checkLogInclusion({ leaf, inclusion, coordinatorKey: KEY })).toEqual({ ok: true });
    const otherProof = { ...inclusion, proof: [value('h2')] };
    expect(checkLogInclusion({ leaf, inclusion: otherProof, coordinatorKey: KEY }).ok).toBe(false);
    expect(fromHex(value('n01'))).toHaveLength(32);
  });
});
