export { EMPTY_TREE_ROOT, MERKLE_HASH_BYTES, merkleLeafHash, merkleNodeHash } from './hash.js';
export type { MerkleCheck } from './merkle-check.js';
export { merkleRoot } from './tree-hash.js';
export { inclusionProof, rootFromInclusionProof, verifyInclusion } from './inclusion-proof.js';
export { consistencyProof, verifyConsistency } from './consistency-proof.js';
