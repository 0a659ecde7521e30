// The court's trust policy (docs/trust-policy.md), TOML: keys, quorum, TSA
// certificates, accepted origins and the chain registry.
import { sha256 } from '@noble/hashes/sha2.js';
import { parse as parseToml } from 'smol-toml';
import { fromBase64, toHex, utf8 } from './bytes.ts';
import { ALG_COSIGNATURE_V1, ALG_ED25519, NoteError, parseVkey, type Vkey } from './note.ts';

export const TRUST_POLICY_FORMAT_V1 = 'anchord.trust-policy/v1';

export interface TrustedChain {
  kind: string;
  chain_id: string;
  endpoints: string[];
}

export interface TrustPolicy {
  sealers: Vkey[];
  witnesses: Vkey[];
  quorum: number;
  /** DER certificates; empty: a token is reported as not checked. */
  tsaCerts: Uint8Array[];
  origins: string[];
  chains: Map<string, TrustedChain>;
  anchorTimeToleranceS: bigint;
  /** SHA-256 of the file's bytes, hex. */
  fingerprint: string;
}

export class PolicyError extends Error {}

/** Reads a `tsa_certs` entry that is a path (the CLI passes a reader; the page has none). */
export type CertLoader = (path: string) => Uint8Array;

const TOP = ['format', 'origins', 'sealers', 'witnesses', 'quorum', 'tsa_certs', 'anchor_time_tolerance_s', 'chains'];
const CHAIN = ['kind', 'chain_id', 'endpoints'];

function strings(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new PolicyError(`${what}: want an array of strings`);
  return v as string[];
}

function uint(v: unknown, what: string): bigint | undefined {
  if (v === undefined) return undefined;
  // TOML integers only (read as bigint); `2.0` is a float, refused as the reference's TOML reader does
  if (typeof v === 'bigint' && v >= 0n) return v;
  throw new PolicyError(`${what}: want a non-negative integer`);
}

export function pemToDer(pem: string): Uint8Array {
  const body = pem
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('-----') && l !== '')
    .join('');
  const der = fromBase64(body);
  if (!der) throw new PolicyError('tsa_certs: inline PEM: not base64');
  return der;
}

/** Parse a trust policy file's text. */
export function parsePolicy(text: string, loadCert?: CertLoader): TrustPolicy {
  let f: Record<string, unknown>;
  try {
    f = parseToml(text, { integersAsBigInt: true }) as Record<string, unknown>;
  } catch (e) {
    throw new PolicyError(`TOML: ${(e as Error).message}`);
  }
  for (const k of Object.keys(f)) if (!TOP.includes(k)) throw new PolicyError(`unknown field \`${k}\``);
  if (f.format !== undefined && f.format !== TRUST_POLICY_FORMAT_V1) {
    throw new PolicyError(`format ${JSON.stringify(f.format)} is not ${JSON.stringify(TRUST_POLICY_FORMAT_V1)}`);
  }
  if (f.sealers === undefined) throw new PolicyError('missing field `sealers`');
  const key = (v: string, alg: number, what: string): Vkey => {
    let k: Vkey;
    try {
      k = parseVkey(v);
    } catch (e) {
      if (e instanceof NoteError) throw new PolicyError(`${what} ${JSON.stringify(v)}: ${e.message}`);
      throw e;
    }
    if (k.alg !== alg) throw new PolicyError(`${what} ${JSON.stringify(v)}: wrong key type`);
    return k;
  };
  const sealers = strings(f.sealers, 'sealers').map((v) => key(v, ALG_ED25519, 'sealer'));
  if (sealers.length === 0) throw new PolicyError('at least one sealer key is required');
  const witnesses = strings(f.witnesses, 'witnesses').map((v) => key(v, ALG_COSIGNATURE_V1, 'witness'));
  const q = uint(f.quorum, 'quorum');
  const quorum = q === undefined ? witnesses.length : Number(q);
  if (q !== undefined && q > BigInt(witnesses.length)) {
    throw new PolicyError(`quorum ${q} is more than the ${witnesses.length} witnesses`);
  }
  const tsaCerts = strings(f.tsa_certs, 'tsa_certs').map((c) => {
    if (c.trimStart().startsWith('-----BEGIN')) return pemToDer(c);
    if (!loadCert) throw new PolicyError(`tsa_certs: ${JSON.stringify(c)} is a file path; in the browser paste the certificate inline (PEM) into the policy`);
    return loadCert(c);
  });
  const chains = new Map<string, TrustedChain>();
  const ch = f.chains;
  if (ch !== undefined) {
    if (typeof ch !== 'object' || ch === null || Array.isArray(ch)) throw new PolicyError('chains: want a table');
    for (const [name, c] of Object.entries(ch as Record<string, unknown>)) {
      const bad = (what: string) => new PolicyError(`chains.${name}.${what}`);
      if (typeof c !== 'object' || c === null || Array.isArray(c)) throw bad(': want a table');
      const t = c as Record<string, unknown>;
      for (const k of Object.keys(t)) if (!CHAIN.includes(k)) throw bad(`: unknown field \`${k}\``);
      if (typeof t.kind !== 'string') throw bad('kind: missing or not a string');
      if (typeof t.chain_id !== 'string') throw bad('chain_id: missing or not a string');
      if (t.kind !== 'judicial' && t.kind !== 'evm') throw bad(`kind ${JSON.stringify(t.kind)}: want "judicial" or "evm"`);
      if (t.chain_id === '') throw bad('chain_id is empty');
      const endpoints = strings(t.endpoints, `chains.${name}.endpoints`);
      for (const e of endpoints) {
        if (!(e.startsWith('http://') || e.startsWith('https://'))) throw bad(`endpoints: ${JSON.stringify(e)} is not an http(s) URL`);
      }
      chains.set(name, { kind: t.kind, chain_id: t.chain_id, endpoints });
    }
  }
  const origins = strings(f.origins, 'origins');
  const tol = uint(f.anchor_time_tolerance_s, 'anchor_time_tolerance_s') ?? 300n;
  return {
    sealers,
    witnesses,
    quorum,
    tsaCerts,
    origins,
    chains,
    anchorTimeToleranceS: tol,
    fingerprint: toHex(sha256(utf8.encode(text))),
  };
}
