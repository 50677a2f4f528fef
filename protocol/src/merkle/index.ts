export { EMPTY_TREE_ROOT, MERKLE_HASH_BYTES, merkleLeafHash, merkleNodeHash, sameHash } from './hash.js';
export type { MerkleCheck } from './merkle-check.js';
export { merkleRoot, type SubtreeHash } from './tree-hash.js';
export { inclusionPath, inclusionProof, rootFromInclusionProof, verifyInclusion } from './inclusion-proof.js';
export { consistencyPath, consistencyProof, verifyConsistency } from './consistency-proof.js';
export {
  StoredMerkleTree,
  appendToFrontier,
  merkleNodesRead,
  rootFromFrontier,
  subtreeFromNodes,
  type FrontierAppend,
  type MerkleFrontier,
  type MerkleNodeId,
  type MerkleNodeLookup,
} from './stored-tree.js';
