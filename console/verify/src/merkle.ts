// RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) verification,
// written from the RFC's step lists. Sizes and indexes are u64 (bigint).
import { eq, toHex } from './bytes.ts';
import { nodeHash, type Suite } from './hashes.ts';

export class ProofError extends Error {}

export function rootFromInclusion(
  s: Suite,
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  path: Uint8Array[],
): Uint8Array {
  if (index >= size) throw new ProofError(`leaf index ${index} is not below the tree size ${size}`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new ProofError(`the path has ${path.length} hashes, more than the tree needs`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(s, p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(s, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError(`the path has ${path.length} hashes, fewer than the tree needs`);
  return r;
}

export function verifyInclusion(
  s: Suite,
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  path: Uint8Array[],
  root: Uint8Array,
): void {
  const r = rootFromInclusion(s, index, size, leaf, path);
  if (!eq(r, root)) throw new ProofError(`computed root ${toHex(r)}, expected ${toHex(root)}`);
}

export function verifyConsistency(
  s: Suite,
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: Uint8Array[],
): void {
  if (size1 > size2) throw new ProofError(`old size ${size1} is larger than new size ${size2}`);
  if (size1 === size2) {
    if (proof.length !== 0) throw new ProofError(`a proof between equal sizes must be empty, got ${proof.length} hashes`);
    if (!eq(root1, root2)) throw new ProofError(`equal sizes ${size1} but different roots`);
    return;
  }
  if (size1 === 0n) {
    if (proof.length !== 0) throw new ProofError('a proof from the empty tree must be empty');
    return;
  }
  if (proof.length === 0) throw new ProofError('empty consistency proof');
  // Step 2: a power-of-two old tree is a node of the new one; seed with its root.
  const pow2 = (size1 & (size1 - 1n)) === 0n;
  const p = pow2 ? [root1, ...proof] : proof;
  // Steps 3 and 4.
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 5.
  let fr = p[0];
  let sr = p[0];
  // Step 6.
  for (const c of p.slice(1)) {
    if (sn === 0n) throw new ProofError('consistency proof too long');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(s, c, fr);
      sr = nodeHash(s, c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(s, sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 7.
  if (sn !== 0n) throw new ProofError('consistency proof too short');
  if (!eq(fr, root1)) throw new ProofError(`old root recomputes to ${toHex(fr)}, expected ${toHex(root1)}`);
  if (!eq(sr, root2)) throw new ProofError(`new root recomputes to ${toHex(sr)}, expected ${toHex(root2)}`);
}
