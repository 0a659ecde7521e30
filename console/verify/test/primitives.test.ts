// Known answers for the primitives the verifier is built on.
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
// @ts-expect-error sm-crypto ships no types
import smCrypto from 'sm-crypto';
import { fromBase64, toBase64, toHex, utf8 } from '../src/bytes.ts';
import { parseJson } from '../src/json.ts';
import { verifyConsistency, rootFromInclusion } from '../src/merkle.ts';
import { parseVkey } from '../src/note.ts';
import { SM3, sm3 } from '../src/sm3.ts';
import { leafHash, nodeHash } from '../src/hashes.ts';

describe('SM3', () => {
  it('GB/T 32905 example 1 ("abc")', () => {
    expect(toHex(sm3(utf8.encode('abc')))).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });
  it('GB/T 32905 example 2 (abcd x 16)', () => {
    expect(toHex(sm3(utf8.encode('abcd'.repeat(16))))).toBe('debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
  });
  it('agrees with sm-crypto, incrementally, for lengths 0..300 in uneven chunks', () => {
    for (let n = 0; n < 300; n += 7) {
      const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
      const h = new SM3();
      for (let i = 0; i < n; i += 13) h.update(data.slice(i, i + 13));
      expect(toHex(h.digest())).toBe(smCrypto.sm3(Array.from(data)));
    }
  });
});

describe('base64 is strict', () => {
  it('round trips and rejects non-canonical forms', () => {
    const b = new Uint8Array([1, 2, 3, 4, 5]);
    expect(fromBase64(toBase64(b))).toEqual(b);
    expect(fromBase64('AQIDBAU')).toBeUndefined(); // no padding
    expect(fromBase64('AQIDBAV=')).toBeUndefined(); // trailing bits
    expect(fromBase64('AQID BAU=')).toBeUndefined();
  });
});

describe('JSON keeps what a double would lose', () => {
  it('integers keep their digits, duplicates are visible, lone surrogates rejected', () => {
    const v = parseJson('{"a":18446744073709551615,"a":1.0}');
    expect(v).toEqual({ t: 'obj', v: [['a', { t: 'num', raw: '18446744073709551615' }], ['a', { t: 'num', raw: '1.0' }]] });
    expect(() => parseJson('"\\ud800"')).toThrow(/surrogate/);
    expect(() => parseJson('01')).toThrow();
    expect(() => parseJson('\ufeff{}')).toThrow();
    expect(() => parseJson('[' .repeat(129) + ']'.repeat(129))).toThrow(/recursion/);
  });
});

describe('RFC 9162 proofs', () => {
  // A reference tree built naively (RFC 6962 §2.1 MTH).
  const leaves = Array.from({ length: 20 }, (_, i) => leafHash('sha256', new Uint8Array([i])));
  const mth = (d: Uint8Array[]): Uint8Array => {
    if (d.length === 0) return sha256(new Uint8Array());
    if (d.length === 1) return d[0];
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return nodeHash('sha256', mth(d.slice(0, k)), mth(d.slice(k)));
  };
  const path = (m: number, d: Uint8Array[]): Uint8Array[] => {
    if (d.length === 1) return [];
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
  };
  const subproof = (m: number, d: Uint8Array[], b: boolean): Uint8Array[] => {
    const n = d.length;
    if (m === n) return b ? [] : [mth(d)];
    let k = 1;
    while (k * 2 < n) k *= 2;
    return m <= k ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))] : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
  };
  it('every inclusion path of trees 1..20 recomputes the root; a wrong index does not', () => {
    for (let n = 1; n <= 20; n++) {
      const d = leaves.slice(0, n);
      for (let m = 0; m < n; m++) {
        expect(rootFromInclusion('sha256', BigInt(m), BigInt(n), d[m], path(m, d))).toEqual(mth(d));
        if (n > 1) {
          let wrong: Uint8Array | null = null;
          try {
            wrong = rootFromInclusion('sha256', BigInt((m + 1) % n), BigInt(n), d[m], path(m, d));
          } catch {
            wrong = null;
          }
          if (wrong) expect(toHex(wrong)).not.toBe(toHex(mth(d)));
        }
      }
    }
  });
  it('every consistency proof of trees 1..20 verifies; a tampered one does not', () => {
    for (let n = 1; n <= 20; n++) {
      for (let m = 1; m <= n; m++) {
        const p = m === n ? [] : subproof(m, leaves.slice(0, n), true);
        const r1 = mth(leaves.slice(0, m));
        const r2 = mth(leaves.slice(0, n));
        expect(() => verifyConsistency('sha256', BigInt(m), BigInt(n), r1, r2, p)).not.toThrow();
        if (p.length > 0) {
          const t = p.map((x) => x.slice());
          t[0][0] ^= 1;
          expect(() => verifyConsistency('sha256', BigInt(m), BigInt(n), r1, r2, t)).toThrow();
        }
      }
    }
  });
});

describe('vkeys', () => {
  it('docs/checkpoint-format.md worked example keys parse, with their ids', () => {
    const s = parseVkey('anchord.local/ledger+5e63ea27+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs');
    expect([s.name, s.alg, toHex(s.keyId)]).toEqual(['anchord.local/ledger', 1, '5e63ea27']);
    const w = parseVkey('witness.example/w1+d9ed62c5+BO1JKMYo0cLG6ukDOJBZlWEpWSc6XGP5NjbBRhSshzfR');
    expect([w.alg, toHex(w.keyId)]).toEqual([4, 'd9ed62c5']);
    expect(() => parseVkey('witness.example/w1+d9ed62c6+BO1JKMYo0cLG6ukDOJBZlWEpWSc6XGP5NjbBRhSshzfR')).toThrow(/key id/);
  });
});
