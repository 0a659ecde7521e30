// Strict parsing of a proof bundle (docs/proof-format.md §Parsing): every
// field required (but `anchor.expected_at_us`), no unknown or duplicate
// field at any level, u64/i64 integers as JSON integers, lowercase hex, a
// timestamp token that is exactly one DER SEQUENCE. Every failure is check
// `format`.
import { fromLowerHex } from './bytes.ts';
import type { EvidenceAlg, Suite } from './hashes.ts';
import { type JVal, JsonError, numKind, parseJson } from './json.ts';

export const BUNDLE_FORMAT_V1 = 'anchord.proof-bundle/v1';

export interface Entry {
  seq: bigint;
  received_at_us: bigint;
  tenant: string;
  external_id: string;
  hash_alg: EvidenceAlg;
  evidence_hash: Uint8Array;
  metadata: string | null;
}

export interface Block {
  height: bigint;
  first_seq: bigint;
  last_seq: bigint;
  leaf_count: bigint;
  merkle_root: Uint8Array;
  prev_hash: Uint8Array;
  sealed_at_us: bigint;
  hash: Uint8Array;
}

export interface Receipt {
  target: string;
  chain_kind: string;
  chain_id: string;
  tx_id: string;
  block_number: bigint;
  block_hash: string;
  block_time_us: bigint;
  checkpoint_size: bigint;
  checkpoint_root: Uint8Array;
  consistency_proof: Uint8Array[];
  receipt: JVal;
}

export interface Bundle {
  format: string;
  hash_suite: Suite;
  entry: Entry;
  leaf_hash: Uint8Array;
  leaf_index: bigint;
  audit_path: Uint8Array[];
  block: Block;
  block_log_path: Uint8Array[];
  checkpoint: {
    size: bigint;
    root: Uint8Array;
    origin: string;
    signed_note: string;
    timestamp_token: Uint8Array | null;
  };
  keys: { sealer: string; witnesses: string[]; quorum: bigint };
  anchor: { status: 'anchored' | 'pending'; expected_at_us: bigint | null; receipts: Receipt[] };
}

export class FormatError extends Error {}

type Reader<T> = (v: JVal, path: string) => T;

const fail = (path: string, m: string): never => {
  throw new FormatError(`${path}: ${m}`);
};

const str: Reader<string> = (v, p) => (v.t === 'str' ? v.v : fail(p, `invalid type: ${v.t === 'num' ? 'number' : v.t}, expected a string`));

const u64: Reader<bigint> = (v, p) => {
  if (v.t !== 'num') return fail(p, `invalid type: ${v.t}, expected u64`);
  const k = numKind(v);
  if (k.kind === 'u64') return k.v;
  return fail(p, k.kind === 'i64' ? `invalid value: integer \`${v.raw}\`, expected u64` : `invalid type: floating point \`${v.raw}\`, expected u64`);
};

const i64: Reader<bigint> = (v, p) => {
  if (v.t !== 'num') return fail(p, `invalid type: ${v.t}, expected i64`);
  const k = numKind(v);
  if (k.kind === 'i64' || (k.kind === 'u64' && k.v < 1n << 63n)) return k.v;
  return fail(p, k.kind === 'u64' ? `invalid value: integer \`${v.raw}\`, expected i64` : `invalid type: floating point \`${v.raw}\`, expected i64`);
};

const hexOf = (s: string, p: string): Uint8Array => {
  try {
    return fromLowerHex(s);
  } catch (e) {
    return fail(p, (e as Error).message);
  }
};

const hex32: Reader<Uint8Array> = (v, p) => {
  const b = hexOf(str(v, p), p);
  return b.length === 32 ? b : fail(p, 'a hash must be 32 bytes (64 hex digits)');
};

const arr = <T>(r: Reader<T>): Reader<T[]> => (v, p) =>
  v.t === 'arr' ? v.v.map((x, i) => r(x, `${p}[${i}]`)) : fail(p, `invalid type: ${v.t}, expected a sequence`);

const nullable = <T>(r: Reader<T>): Reader<T | null> => (v, p) => (v.t === 'null' ? null : r(v, p));

const oneOf = <T extends string>(names: readonly T[]): Reader<T> => (v, p) => {
  const s = str(v, p);
  return (names as readonly string[]).includes(s) ? (s as T) : fail(p, `unknown variant \`${s}\`, expected one of ${names.map((n) => '`' + n + '`').join(', ')}`);
};

/** An object with exactly these fields (optional ones may be absent). */
function obj<T>(fields: { [K in keyof T]: Reader<T[K]> }, optional: (keyof T)[] = []): Reader<T> {
  return (v, p) => {
    if (v.t !== 'obj') return fail(p, `invalid type: ${v.t}, expected a struct`);
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
    for (const [k, x] of v.v) {
      if (!(k in fields)) fail(p, `unknown field \`${k}\`, expected one of ${Object.keys(fields).map((n) => '`' + n + '`').join(', ')}`);
      if (seen.has(k)) fail(p, `duplicate field \`${k}\``);
      seen.add(k);
      out[k] = (fields as Record<string, Reader<unknown>>)[k](x, `${p}.${k}`);
    }
    for (const k of Object.keys(fields)) {
      if (!seen.has(k)) {
        if ((optional as string[]).includes(k)) out[k] = null;
        else fail(p, `missing field \`${k}\``);
      }
    }
    return out as T;
  };
}

/** DER: one value, definite shortest-form length, nothing after it. */
export function checkTokenDer(t: Uint8Array): void {
  if (t.length === 0) throw new FormatError('the timestamp token is empty (use null when there is none)');
  if (t[0] !== 0x30) throw new FormatError('the timestamp token is not a DER SEQUENCE (ContentInfo)');
  if (t.length < 2) throw new FormatError('the timestamp token: no length');
  const l0 = t[1];
  let len: number;
  let head: number;
  if (l0 < 0x80) {
    len = l0;
    head = 2;
  } else {
    const n = l0 & 0x7f;
    if (n === 0 || n > 4) throw new FormatError('the timestamp token: indefinite or oversized length (not DER)');
    if (t.length < 2 + n) throw new FormatError('the timestamp token: truncated length');
    const bytes = t.slice(2, 2 + n);
    if (bytes[0] === 0 || (n === 1 && bytes[0] < 0x80)) throw new FormatError('the timestamp token: length not in its shortest form (not DER)');
    len = 0;
    for (const b of bytes) len = len * 256 + b;
    head = 2 + n;
  }
  const total = head + len;
  if (total < t.length) throw new FormatError(`the timestamp token has ${t.length - total} trailing bytes after its DER value`);
  if (total > t.length) throw new FormatError('the timestamp token is truncated');
}

const token: Reader<Uint8Array | null> = (v, p) => {
  if (v.t === 'null') return null;
  const b = hexOf(str(v, p), `${p} (timestamp_token)`);
  try {
    checkTokenDer(b);
  } catch (e) {
    return fail(p, (e as Error).message);
  }
  return b;
};

const entry = obj<Omit<Entry, 'evidence_hash'> & { evidence_hash: string }>({
  seq: u64,
  received_at_us: i64,
  tenant: str,
  external_id: str,
  hash_alg: oneOf(['sha256', 'sm3', 'sha512'] as const),
  evidence_hash: str,
  metadata: nullable(str),
});

const receipt = obj<Receipt>({
  target: str,
  chain_kind: str,
  chain_id: str,
  tx_id: str,
  block_number: u64,
  block_hash: str,
  block_time_us: i64,
  checkpoint_size: u64,
  checkpoint_root: hex32,
  consistency_proof: arr(hex32),
  receipt: (v) => v,
});

const bundle = obj<Bundle>({
  format: str,
  hash_suite: oneOf(['sha256', 'sm3'] as const),
  entry: (v, p) => {
    const e = entry(v, p);
    return { ...e, evidence_hash: hexOf(e.evidence_hash, `${p}.evidence_hash`) };
  },
  leaf_hash: hex32,
  leaf_index: u64,
  audit_path: arr(hex32),
  block: obj<Block>({
    height: u64,
    first_seq: u64,
    last_seq: u64,
    leaf_count: u64,
    merkle_root: hex32,
    prev_hash: hex32,
    sealed_at_us: i64,
    hash: hex32,
  }),
  block_log_path: arr(hex32),
  checkpoint: obj({ size: u64, root: hex32, origin: str, signed_note: str, timestamp_token: token }),
  keys: obj({ sealer: str, witnesses: arr(str), quorum: u64 }),
  anchor: obj<Bundle['anchor']>(
    { status: oneOf(['anchored', 'pending'] as const), expected_at_us: nullable(i64), receipts: arr(receipt) },
    ['expected_at_us'],
  ),
});

/** Parse a bundle's text; every failure is a [`FormatError`] (check `format`). */
export function parseBundle(text: string): Bundle {
  let j: JVal;
  try {
    j = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) throw new FormatError(`not a proof bundle: ${e.message}`);
    throw e;
  }
  try {
    return bundle(j, 'bundle');
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(`not a proof bundle: ${e.message}`);
    throw e;
  }
}
