import type { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { fromHex, toHex, utf8 } from '../encoding.js';
import { EMPTY_TREE_ROOT, merkleLeafHash, sameHash } from '../merkle/hash.js';
import { verifyConsistency } from '../merkle/consistency-proof.js';
import { StoredMerkleTree } from '../merkle/stored-tree.js';
import { TreeHeadLineSchema, verifyTreeHeadSignature, type TreeHeadLine } from './tree-head.js';

// The cryptographic half of verification: records are leaves of one Merkle tree, and every
// signed tree head must (1) come from the key in force, (2) cover exactly the records before it,
// (3) have the root those records give, and (4) carry a valid consistency proof from the head
// before it. A record is authentic once a head that covers it passes all four.

/** `' at <path>: <message>'` of a schema failure's first issue, for a problem message. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  return `${where}: ${issue?.message ?? 'invalid'}`;
}

/** A problem found by the tree checks, at a position of the log (its line, 0-based). */
export interface TreeProblem {
  seq: number;
  code: 'SCHEMA' | 'SEQ' | 'KEY' | 'SIGNATURE' | 'TIME' | 'TREE_SIZE' | 'ROOT' | 'CONSISTENCY';
  message: string;
}

export interface TreeCheckState {
  tree: StoredMerkleTree;
  /** The key heads must be signed with now. */
  keyInForce: string;
  /** Rotations seen among the records since the last head, in order: they take effect once a head covers them. */
  pendingRotations: string[];
  /** Size and claimed root of the last head (0 and the empty root before any). */
  lastHead: { size: number; root: Uint8Array; position: number | null };
  /** Log position of each leaf. */
  positionOfLeaf: number[];
}

export function createTreeCheckState(trustedKey: string): TreeCheckState {
  return {
    tree: new StoredMerkleTree(),
    keyInForce: trustedKey,
    pendingRotations: [],
    lastHead: { size: 0, root: EMPTY_TREE_ROOT, position: null },
    positionOfLeaf: [],
  };
}

/**
 * Adds a line that is not a tree head as the next leaf. Its leaf hash is taken over whatever the
 * line holds (even an invalid record), so one bad record does not shift every later leaf.
 */
export function addLeaf(state: TreeCheckState, raw: unknown, position: number): void {
  state.positionOfLeaf.push(position);
  state.tree.append(merkleLeafHash(utf8(canonicalJson(raw ?? null))));
}

/** The key a record's rotation must name as previous: the key in force after earlier rotations. */
export function currentSigner(state: TreeCheckState): string {
  return state.pendingRotations.at(-1) ?? state.keyInForce;
}

/** Where the records a head covers begin: problems of a head's authentication are reported there. */
function firstCovered(state: TreeCheckState, position: number): number {
  return state.positionOfLeaf[state.lastHead.size] ?? position;
}

/** Checks one tree-head line against the records before it; returns the head if it parsed. */
export function checkTreeHead(
  state: TreeCheckState,
  raw: unknown,
  position: number,
  prevTs: number,
): { problems: TreeProblem[]; line: TreeHeadLine | null } {
  const problems: TreeProblem[] = [];
  const add = (seq: number, code: TreeProblem['code'], message: string) =>
    problems.push({ seq, code, message });
  const parsed = TreeHeadLineSchema.safeParse(raw);
  if (!parsed.success) {
    add(position, 'SCHEMA', `line ${position} is not a valid tree head${firstIssue(parsed.error)}`);
    return { problems, line: null };
  }
  const line = parsed.data;
  const head = line.treeHead;
  const covered = firstCovered(state, position);
  if (line.seq !== position)
    add(
      position,
      'SEQ',
      `tree head at position ${position} has seq ${line.seq}: a line was deleted, inserted or moved`,
    );
  if (head.treeSize !== state.tree.size)
    add(
      position,
      'TREE_SIZE',
      `tree head at position ${position} covers ${head.treeSize} records, but ${state.tree.size} come before it`,
    );
  if (head.ts < prevTs)
    add(
      position,
      'TIME',
      `tree head at position ${position} time ${head.ts} is before the previous line's ${prevTs}`,
    );
  let authentic = false;
  if (head.keyId !== state.keyInForce)
    add(
      covered,
      'KEY',
      `tree head at position ${position} is signed by ${head.keyId}, expected ${state.keyInForce}`,
    );
  else if (!verifyTreeHeadSignature(line, state.keyInForce))
    add(
      covered,
      'SIGNATURE',
      `tree head at position ${position} has an invalid signature for key ${state.keyInForce}`,
    );
  else authentic = true;

  const claimed = fromHex(head.rootHash);
  // A head that claims fewer records than come before it is still checked over the ones it
  // claims: a record slipped in among them changes their root.
  if (head.treeSize <= state.tree.size && head.treeSize >= state.lastHead.size) {
    const computed = state.tree.root(head.treeSize);
    if (!sameHash(computed, claimed))
      add(
        covered,
        'ROOT',
        `tree head at position ${position} signs root ${head.rootHash} for ${head.treeSize} records, but the log's give ${toHex(computed)}: a record it covers (from position ${covered} on) was changed, added or removed`,
      );
  }
  const consistency = verifyConsistency({
    oldSize: state.lastHead.size,
    newSize: head.treeSize,
    oldRoot: state.lastHead.root,
    newRoot: claimed,
    proof: line.consistency.map(fromHex),
  });
  if (!consistency.ok)
    add(
      position,
      'CONSISTENCY',
      `tree head at position ${position} is not shown to extend the head before it: ${consistency.reason}`,
    );
  // Rotations covered by an authentic head take effect for the next one.
  if (authentic) state.keyInForce = currentSigner(state);
  state.pendingRotations = [];
  state.lastHead = { size: head.treeSize, root: claimed, position };
  return { problems, line };
}
