// The hash suites of the format: the tree suite (`hash_suite`: sha256, sm3)
// and the evidence algorithms (`entry.hash_alg`: sha256, sm3, sha512).
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concat } from './bytes.ts';
import { SM3, sm3 } from './sm3.ts';

export type Suite = 'sha256' | 'sm3';
export type EvidenceAlg = 'sha256' | 'sm3' | 'sha512';

export const SUITE_ID: Record<Suite, number> = { sha256: 1, sm3: 2 };
export const ALG_ID: Record<EvidenceAlg, number> = { sha256: 1, sm3: 2, sha512: 3 };
export const ALG_LEN: Record<EvidenceAlg, number> = { sha256: 32, sm3: 32, sha512: 64 };

export function digest(s: EvidenceAlg, data: Uint8Array): Uint8Array {
  return s === 'sha256' ? sha256(data) : s === 'sm3' ? sm3(data) : sha512(data);
}

export function leafHash(s: Suite, data: Uint8Array): Uint8Array {
  return digest(s, concat(new Uint8Array([0]), data));
}

export function nodeHash(s: Suite, l: Uint8Array, r: Uint8Array): Uint8Array {
  return digest(s, concat(new Uint8Array([1]), l, r));
}

/** An incremental hasher for a file's evidence hash (chunk by chunk). */
export interface Incremental {
  update(chunk: Uint8Array): void;
  digest(): Uint8Array;
}

export function incremental(alg: EvidenceAlg): Incremental {
  const h = alg === 'sha256' ? sha256.create() : alg === 'sm3' ? new SM3() : sha512.create();
  return {
    update: (c) => void h.update(c),
    digest: () => h.digest(),
  };
}
