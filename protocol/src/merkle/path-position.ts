/**
 * Where a verifier stands while it climbs an audit path (RFC 9162 §2.1.3.2 and §2.1.4.2):
 * `fn` is the node's position within its level, `sn` the last position of that level.
 */
export interface PathPosition {
  fn: number;
  sn: number;
}

/**
 * Takes the next path hash: returns whether it is the LEFT sibling of the current node, and
 * moves `position` up to the parent. A right child (odd fn) or the last node of a level
 * (fn === sn, no right sibling) has its sibling on the left; a last node that is a left child
 * has no sibling at all and is carried up unchanged first, which is the inner loop.
 */
export function climbOneLevel(position: PathPosition): boolean {
  const siblingOnLeft = position.fn % 2 === 1 || position.fn === position.sn;
  if (siblingOnLeft) {
    while (position.fn % 2 === 0 && position.fn !== 0) {
      position.fn /= 2;
      position.sn = Math.floor(position.sn / 2);
    }
  }
  position.fn = Math.floor(position.fn / 2);
  position.sn = Math.floor(position.sn / 2);
  return siblingOnLeft;
}
