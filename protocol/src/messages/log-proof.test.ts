import { describe, expect, it } from 'vitest';
import { toBase64, toHex } from '../encoding.js';
import { inclusionPath } from '../merkle/inclusion-proof.js';
import { StoredMerkleTree } from '../merkle/stored-tree.js';
import { RoundLogBuilder } from '../round-log/log-builder.js';
import { roundLogLeafHash, type RoundLogRecord } from '../round-log/record.js';
import { keyPairFromSeed } from '../signing.js';
import { checkLogInclusion, type InclusionProof, type LogLeaf } from './log-proof.js';

const coordinator = keyPairFromSeed(new Uint8Array(32).fill(1));
const other = keyPairFromSeed(new Uint8Array(32).fill(2));
const digest = (n: number) => n.toString(16).padStart(64, '0');

/** Five accepted updates under one signed head, and what a device gets for the third. */
function fixture(): { leaf: LogLeaf; inclusion: InclusionProof } {
  const log = new RoundLogBuilder();
  const tree = new StoredMerkleTree();
  const records: RoundLogRecord[] = [];
  for (let n = 0; n < 5; n++) {
    const record = log.record(
      {
        type: 'update.accepted',
        taskId: 't',
        roundId: 't:1',
        device: `dev_${digest(n).slice(0, 32)}`,
        blobDigest: digest(n + 1),
        norm: 0.5,
        clipBound: 1,
        clipped: false,
        bytes: 100,
        numExamples: 10,
      },
      1_700_000_000_000 + n,
    );
    records.push(record);
    tree.append(roundLogLeafHash(record));
  }
  const line = log.signHead(1_700_000_001_000, coordinator);
  const record = records[2];
  if (!record) throw new Error('fixture');
  return {
    leaf: { record, leafHash: toHex(roundLogLeafHash(record)) },
    inclusion: {
      leafIndex: 2,
      proof: inclusionPath(tree.subtree, 2, 5).map(toHex),
      head: { treeHead: line.treeHead, signature: line.signature },
    },
  };
}

describe('checkLogInclusion', () => {
  const key = toBase64(coordinator.publicKey);

  it('accepts the proof of a record against the signed head that covers it', () => {
    expect(checkLogInclusion({ ...fixture(), coordinatorKey: key })).toEqual({ ok: true });
  });

  it('says which step fails for a changed record, leaf, proof, head or key', () => {
    const { leaf, inclusion } = fixture();
    const reason = (changed: { leaf?: LogLeaf; inclusion?: InclusionProof; coordinatorKey?: string }) => {
      const check = checkLogInclusion({ leaf, inclusion, coordinatorKey: key, ...changed });
      return check.ok ? 'ok' : check.reason;
    };
    const edited = { ...leaf.record, ts: leaf.record.ts + 1 };
    expect(reason({ leaf: { ...leaf, record: edited } })).toMatch(/leaf hash is not its record's/);
    const flipped = [...inclusion.proof];
    flipped[0] = digest(7);
    expect(reason({ inclusion: { ...inclusion, proof: flipped } })).toMatch(/different root/);
    expect(reason({ inclusion: { ...inclusion, leafIndex: 3 } })).toMatch(/for leaf 3, not 2/);
    const forged = { ...inclusion.head, treeHead: { ...inclusion.head.treeHead, treeSize: 6 } };
    expect(reason({ inclusion: { ...inclusion, head: forged } })).toMatch(/signature is not valid/);
    expect(reason({ coordinatorKey: toBase64(other.publicKey) })).toMatch(/not the coordinator key/);
  });
});
