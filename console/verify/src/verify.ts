// The checks of docs/proof-format.md §Verification, in the order the
// reference verifier runs them, and the trust-policy verdict
// (docs/trust-policy.md §Verdicts).
import {
  anyChar,
  concat,
  eq,
  fromLowerHex,
  I64_MIN,
  i64be,
  isRustControl,
  isRustWhitespace,
  satI64,
  toBase64,
  toHex,
  u64be,
  utf8,
  utf8Len,
} from './bytes.ts';
import { BUNDLE_FORMAT_V1, type Bundle, type Receipt } from './bundle.ts';
import { ALG_ID, digest, leafHash, SUITE_ID } from './hashes.ts';
import { asI64, asU64, getKey, type JVal, jsonText, parseJson } from './json.ts';
import { ProofError, verifyConsistency, verifyInclusion } from './merkle.ts';
import { NoteError, parseCheckpoint, parseNote, parseVkey, type SignedNote, verifyBy, type Vkey } from './note.ts';
import type { TrustPolicy } from './policy.ts';

export const CLOCK_TOLERANCE_US = 600_000_000n;

export type Check =
  | 'format'
  | 'trusted_keys'
  | 'evidence_mismatch'
  | 'entry'
  | 'leaf_hash'
  | 'leaf_index'
  | 'audit_path'
  | 'block_header'
  | 'checkpoint'
  | 'block_log_path'
  | 'sealer_signature'
  | 'witness_signature'
  | 'witness_quorum'
  | 'timestamp'
  | 'anchor_receipt'
  | 'time_order';

export class CheckError extends Error {
  constructor(
    public check: Check,
    message: string,
  ) {
    super(message);
  }
}

/** One passed check, with the values it compared (for the page's list). */
export interface StepRecord {
  check: Check;
  ok: boolean;
  values: Record<string, string>;
}

export interface Report {
  evidence_hash: string;
  hash_alg: string;
  tenant: string;
  external_id: string;
  seq: bigint;
  received_at_us: bigint;
  block_height: bigint;
  checkpoint_size: bigint;
  checkpoint_origin: string;
  cosigned_by: string[];
  quorum: number;
  timestamp_unix: bigint | null;
  timestamp_unchecked: boolean;
  anchored: boolean;
  anchors: string[];
  keys_from_bundle: boolean;
}

/** Checks an RFC 3161 token over a SHA-256 digest; returns genTime (Unix seconds) or throws. */
export type TimestampVerifier = (token: Uint8Array, digest: Uint8Array) => bigint;

export interface Keys {
  sealers: Vkey[];
  witnesses: Vkey[];
  quorum: number;
  timestamps: TimestampVerifier | null;
  fromBundle: boolean;
}

export function keysFromBundle(b: Bundle): Keys {
  const p = (v: string) => {
    try {
      return parseVkey(v);
    } catch (e) {
      throw new CheckError('trusted_keys', `trusted keys: ${(e as Error).message}`);
    }
  };
  return {
    sealers: [p(b.keys.sealer)],
    witnesses: b.keys.witnesses.map(p),
    quorum: Number(b.keys.quorum),
    timestamps: null,
    fromBundle: true,
  };
}

// ---------------------------------------------------------------- entry

const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function entryEncoding(b: Bundle): Uint8Array {
  const e = b.entry;
  const meta = utf8.encode(e.metadata ?? '');
  const tenant = utf8.encode(e.tenant);
  const ext = utf8.encode(e.external_id);
  const u16 = (n: number) => new Uint8Array([(n >> 8) & 255, n & 255]);
  const u32 = (n: number) => new Uint8Array([(n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
  return concat(
    utf8.encode('anchord.entry'),
    new Uint8Array([1]),
    u64be(e.seq),
    i64be(e.received_at_us),
    new Uint8Array([ALG_ID[e.hash_alg], e.evidence_hash.length & 255]),
    e.evidence_hash,
    u16(tenant.length),
    tenant,
    u16(ext.length),
    ext,
    u32(meta.length),
    meta,
  );
}

/** RFC 8785 (JCS) canonical form of a parsed JSON value. */
function jcs(v: JVal): string {
  switch (v.t) {
    case 'obj': {
      const m = new Map<string, JVal>();
      for (const [k, x] of v.v) m.set(k, x); // the last of duplicate keys, as serde_json keeps
      const keys = [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // UTF-16 code units
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + jcs(m.get(k)!)).join(',') + '}';
    }
    case 'arr':
      return '[' + v.v.map(jcs).join(',') + ']';
    case 'num': {
      const n = Number(v.raw);
      return Object.is(n, -0) ? '0' : String(n);
    }
    default:
      return jsonText(v);
  }
}

function validateEntry(b: Bundle): void {
  const e = b.entry;
  const bad = (m: string) => new CheckError('entry', `entry is not a valid evidence entry: ${m}`);
  if (!(TENANT_RE.test(e.tenant) && e.tenant.length <= 64)) {
    throw bad(`tenant must be 1 to 64 characters of [A-Za-z0-9._-] starting with a letter or digit, got ${JSON.stringify(e.tenant)}`);
  }
  if (e.external_id.length === 0 || utf8Len(e.external_id) > 256 || anyChar(e.external_id, isRustControl)) {
    throw bad('external id must be 1 to 256 bytes of UTF-8 without control characters');
  }
  const want = { sha256: 32, sm3: 32, sha512: 64 }[e.hash_alg];
  if (e.evidence_hash.length !== want) throw bad(`${e.hash_alg} hash must be ${want} bytes, got ${e.evidence_hash.length}`);
  if (e.received_at_us < 0n) throw bad(`negative received time ${e.received_at_us}`);
  if (e.metadata !== null) {
    let v: JVal;
    try {
      v = parseJson(e.metadata);
    } catch {
      throw bad('metadata is not in RFC 8785 canonical form');
    }
    if (v.t !== 'obj') throw bad('metadata must be a JSON object');
    const c = jcs(v);
    if (utf8Len(c) > 8192) throw bad(`metadata is ${utf8Len(c)} bytes in canonical form, more than the 8192 allowed`);
    if (c !== e.metadata) throw bad('metadata is not in RFC 8785 canonical form');
  }
}

// ---------------------------------------------------------------- block

export function headerEncoding(b: Bundle): Uint8Array {
  const h = b.block;
  return concat(
    utf8.encode('anchord.block'),
    new Uint8Array([1, SUITE_ID[b.hash_suite]]),
    u64be(h.height),
    u64be(h.first_seq),
    u64be(h.last_seq),
    u64be(h.leaf_count),
    h.merkle_root,
    h.prev_hash,
    i64be(h.sealed_at_us),
  );
}

function validateHeader(b: Bundle): void {
  const h = b.block;
  const bad = (m: string) => new CheckError('block_header', `block header: block header: ${m}`);
  if (h.last_seq < h.first_seq) throw bad(`last_seq ${h.last_seq} is before first_seq ${h.first_seq}`);
  if (h.leaf_count !== h.last_seq - h.first_seq + 1n) {
    throw bad(`leaf_count ${h.leaf_count} does not match the range ${h.first_seq}..=${h.last_seq}`);
  }
  if (h.height === 0n && (h.first_seq !== 0n || !h.prev_hash.every((x) => x === 0))) {
    throw bad('block 0 must start at seq 0 with an all-zero prev_hash');
  }
  if (h.sealed_at_us < 0n) throw bad('negative sealed time');
}

// ---------------------------------------------------------------- receipts

function checkReceiptFields(r: Receipt): void {
  const fields: [string, string][] = [
    ['target', r.target],
    ['chain_kind', r.chain_kind],
    ['chain_id', r.chain_id],
    ['tx_id', r.tx_id],
    ['block_hash', r.block_hash],
  ];
  for (const [name, v] of fields) {
    if (v.length === 0 || utf8Len(v) > 256 || anyChar(v, (c) => isRustWhitespace(c) || isRustControl(c))) {
      throw new Error(`${name} must be 1 to 256 characters without spaces`);
    }
  }
  if (r.chain_kind === 'evm') {
    for (const [name, v] of [
      ['tx_id', r.tx_id],
      ['block_hash', r.block_hash],
    ]) {
      if (!/^0x[0-9a-f]{64}$/.test(v)) {
        throw new Error(`${name} ${JSON.stringify(v)} of an evm receipt must be 0x and 64 lowercase hex digits`);
      }
    }
    const canonical = /^(0|[1-9][0-9]*)$/.test(r.chain_id) && BigInt(r.chain_id) < 1n << 64n;
    if (!canonical) throw new Error(`chain_id ${JSON.stringify(r.chain_id)} of an evm receipt must be the decimal EIP-155 chain id`);
  }
}

export function checkpointBodyText(origin: string, size: bigint, root: Uint8Array): string {
  return `${origin}\n${size}\n${toBase64(root)}\n`;
}

export function anchorPayloadHex(origin: string, size: bigint, root: Uint8Array): string {
  return '0x' + toHex(concat(utf8.encode('ANCHORD1'), u64be(size), root, utf8.encode(origin)));
}

function checkRawReceipt(r: Receipt, origin: string): void {
  const raw = r.receipt;
  if (raw.t !== 'obj') throw new Error('the raw receipt is not a JSON object');
  const rootB64 = toBase64(r.checkpoint_root);
  const rootHex = toHex(r.checkpoint_root);
  const contradicts = (what: string, v: JVal, summary: string) =>
    new Error(`the raw receipt's ${what} is ${jsonText(v)}, the receipt says ${summary}`);
  const strEq = (key: string, v: JVal | undefined, want: string) => {
    if (v === undefined) return;
    if (v.t === 'str' && v.v === want) return;
    throw contradicts(key, v, want);
  };
  const u64Eq = (key: string, v: JVal | undefined, want: bigint) => {
    if (v === undefined) return;
    if (asU64(v) === want) return;
    throw contradicts(key, v, String(want));
  };
  const i64Eq = (key: string, v: JVal | undefined, want: bigint) => {
    if (v === undefined) return;
    if (asI64(v) === want) return;
    throw contradicts(key, v, String(want));
  };
  const g = (k: string) => getKey(raw, k);
  u64Eq('version', g('version'), 1n);
  strEq('target', g('target'), r.target);
  strEq('chainKind', g('chainKind'), r.chain_kind);
  strEq('chainId', g('chainId'), r.chain_id);
  strEq('txId', g('txId'), r.tx_id);
  u64Eq('blockNumber', g('blockNumber'), r.block_number);
  strEq('blockHash', g('blockHash'), r.block_hash);
  i64Eq('blockTimeUs', g('blockTimeUs'), r.block_time_us);
  strEq('checkpoint_root', g('checkpoint_root'), rootHex);
  const c = g('checkpoint');
  if (c !== undefined) {
    strEq('checkpoint.origin', getKey(c, 'origin'), origin);
    u64Eq('checkpoint.size', getKey(c, 'size'), r.checkpoint_size);
    strEq('checkpoint.root', getKey(c, 'root'), rootB64);
    strEq('checkpoint.body', getKey(c, 'body'), checkpointBodyText(origin, r.checkpoint_size, r.checkpoint_root));
  }
  const details = g('details');
  const d = (k: string) => getKey(details, k);
  if (r.chain_kind === 'judicial') {
    const ev = d('evidence');
    if (ev !== undefined) {
      strEq('details.evidence.origin', getKey(ev, 'origin'), origin);
      u64Eq('details.evidence.size', getKey(ev, 'size'), r.checkpoint_size);
      strEq('details.evidence.root', getKey(ev, 'root'), rootB64);
    }
    const resp = d('response');
    if (resp !== undefined) {
      strEq('details.response.txId', getKey(resp, 'txId'), r.tx_id);
      strEq('details.response.chainId', getKey(resp, 'chainId'), r.chain_id);
      u64Eq('details.response.blockHeight', getKey(resp, 'blockHeight'), r.block_number);
      strEq('details.response.blockHash', getKey(resp, 'blockHash'), r.block_hash);
      const t = getKey(resp, 'blockTime');
      if (t !== undefined) {
        const ms = asI64(t);
        if (ms === undefined || satI64(ms * 1000n) !== r.block_time_us) {
          throw contradicts('details.response.blockTime (ms)', t, String(r.block_time_us));
        }
      }
      const rev = getKey(resp, 'evidence');
      if (rev !== undefined) {
        u64Eq('details.response.evidence.size', getKey(rev, 'size'), r.checkpoint_size);
        strEq('details.response.evidence.root', getKey(rev, 'root'), rootB64);
      }
    }
  } else if (r.chain_kind === 'evm') {
    strEq('details.input', d('input'), anchorPayloadHex(origin, r.checkpoint_size, r.checkpoint_root));
  }
}

// ---------------------------------------------------------------- verify

/**
 * Run every check of docs/proof-format.md §Verification in order; stops at
 * the first failure with a [`CheckError`]. `steps` receives each passed
 * check with its values.
 */
export function verifyBundle(b: Bundle, keys: Keys, expected: Uint8Array | null, steps: StepRecord[] = []): Report {
  const pass = (check: Check, values: Record<string, string>) => steps.push({ check, ok: true, values });
  const suite = b.hash_suite;
  // 1. Format, and a trusted sealer key.
  if (b.format !== BUNDLE_FORMAT_V1) {
    throw new CheckError('format', `unsupported bundle format ${JSON.stringify([...b.format].slice(0, 80).join(''))} (want ${JSON.stringify(BUNDLE_FORMAT_V1)})`);
  }
  if (keys.sealers.length === 0) throw new CheckError('trusted_keys', 'trusted keys: no trusted sealer key');
  pass('format', { format: b.format, hash_suite: suite });
  // 2. The evidence.
  const preserved = toHex(b.entry.evidence_hash);
  if (expected !== null && !eq(expected, b.entry.evidence_hash)) {
    throw new CheckError('evidence_mismatch', `evidence mismatch: the file/hash is ${toHex(expected)}, the bundle's entry preserves ${preserved}`);
  }
  pass('evidence_mismatch', { given: expected ? toHex(expected) : '(none given)', preserved, hash_alg: b.entry.hash_alg });
  // 3. The entry and its leaf hash.
  validateEntry(b);
  const leaf = leafHash(suite, entryEncoding(b));
  if (!eq(leaf, b.leaf_hash)) {
    throw new CheckError('leaf_hash', `leaf hash: the entry hashes to ${toHex(leaf)}, the bundle states ${toHex(b.leaf_hash)}`);
  }
  pass('leaf_hash', { tenant: b.entry.tenant, external_id: b.entry.external_id, seq: String(b.entry.seq), leaf_hash: toHex(leaf) });
  // 4. The entry's place in its block.
  const blk = b.block;
  const inRange = b.entry.seq >= blk.first_seq && b.entry.seq <= blk.last_seq;
  if (!inRange || b.leaf_index !== b.entry.seq - blk.first_seq) {
    throw new CheckError(
      'leaf_index',
      `leaf index ${b.leaf_index} does not place seq ${b.entry.seq} in block ${blk.height} (seqs ${blk.first_seq}..=${blk.last_seq})`,
    );
  }
  pass('leaf_index', { leaf_index: String(b.leaf_index), block: `${blk.height} (seqs ${blk.first_seq}..=${blk.last_seq})` });
  // 5. Audit path to the block's Merkle root.
  try {
    verifyInclusion(suite, b.leaf_index, blk.leaf_count, leaf, b.audit_path, blk.merkle_root);
  } catch (e) {
    if (e instanceof ProofError) throw new CheckError('audit_path', `audit path (entry to block root) does not verify: ${e.message}`);
    throw e;
  }
  pass('audit_path', { merkle_root: toHex(blk.merkle_root), leaf_count: String(blk.leaf_count), path_length: String(b.audit_path.length) });
  // 6. The header and its hash.
  validateHeader(b);
  const blockHash = leafHash(suite, headerEncoding(b));
  if (!eq(blockHash, blk.hash)) {
    throw new CheckError('block_header', `block header: the header hashes to ${toHex(blockHash)}, the bundle states ${toHex(blk.hash)}`);
  }
  pass('block_header', { height: String(blk.height), block_hash: toHex(blockHash), sealed_at_us: String(blk.sealed_at_us) });
  // 7. The signed note is this checkpoint; one line per key.
  const cp = b.checkpoint;
  let note: SignedNote;
  let body;
  try {
    note = parseNote(cp.signed_note);
    body = parseCheckpoint(note.text);
  } catch (e) {
    if (e instanceof NoteError) throw new CheckError('checkpoint', `checkpoint: ${e.message}`);
    throw e;
  }
  note.sigs.forEach((a, i) => {
    if (note.sigs.slice(0, i).some((o) => o.name === a.name && eq(o.keyId, a.keyId))) {
      throw new CheckError('checkpoint', `checkpoint: two signature lines by key ${a.name} ${toHex(a.keyId)}`);
    }
  });
  if (body.size !== cp.size || !eq(body.root, cp.root) || body.origin !== cp.origin) {
    throw new CheckError(
      'checkpoint',
      `checkpoint: the signed note says origin ${JSON.stringify(body.origin)} size ${body.size} root ${toHex(body.root)}, the bundle states origin ${JSON.stringify(cp.origin)} size ${cp.size} root ${toHex(cp.root)}`,
    );
  }
  pass('checkpoint', { origin: cp.origin, size: String(cp.size), root: toHex(cp.root), signatures: String(note.sigs.length) });
  // 8. Block log path to the checkpoint root.
  try {
    verifyInclusion(suite, blk.height, cp.size, blockHash, b.block_log_path, cp.root);
  } catch (e) {
    if (e instanceof ProofError) {
      throw new CheckError('block_log_path', `block log path (block ${blk.height} to checkpoint of size ${cp.size}) does not verify: ${e.message}`);
    }
    throw e;
  }
  pass('block_log_path', { height: String(blk.height), checkpoint_size: String(cp.size), path_length: String(b.block_log_path.length) });
  // 9. A trusted sealer signed the note.
  let sealerErr: NoteError | null = null;
  let sealedBy: string | null = null;
  for (const k of keys.sealers) {
    try {
      verifyBy(note, k);
      sealedBy = k.text;
      break;
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      if (sealerErr === null || e.kind === 'bad_signature') sealerErr = e;
    }
  }
  if (sealedBy === null) {
    throw new CheckError('sealer_signature', `sealer signature on the checkpoint: ${sealerErr ? sealerErr.message : 'malformed note: no sealer signature'}`);
  }
  pass('sealer_signature', { sealer: sealedBy });
  // Time order: nothing predates the sealing of the block by more than the tolerance.
  const notBefore = satI64(blk.sealed_at_us - CLOCK_TOLERANCE_US);
  if (b.entry.received_at_us > satI64(blk.sealed_at_us + CLOCK_TOLERANCE_US)) {
    throw new CheckError('time_order', `time order: entry received at ${b.entry.received_at_us} µs, after its block was sealed at ${blk.sealed_at_us} µs`);
  }
  // 10. Witness cosignatures and the quorum.
  const cosignedBy: string[] = [];
  const cosignTimes: string[] = [];
  for (const w of keys.witnesses) {
    let t: bigint | null;
    try {
      t = verifyBy(note, w);
    } catch (e) {
      if (e instanceof NoteError && e.kind === 'missing_signature') continue;
      if (e instanceof NoteError) throw new CheckError('witness_signature', `witness cosignature: ${e.message}`);
      throw e;
    }
    if (t !== null && satI64(BigInt.asIntN(64, t) * 1_000_000n) < notBefore) {
      throw new CheckError('time_order', `time order: witness ${w.name} cosigned at ${t} (Unix seconds), before block ${blk.height} was sealed at ${blk.sealed_at_us} µs`);
    }
    if (!cosignedBy.includes(w.name)) {
      cosignedBy.push(w.name);
      cosignTimes.push(t === null ? w.name : `${w.name} at ${t}`);
    }
  }
  if (cosignedBy.length < keys.quorum) {
    throw new CheckError(
      'witness_quorum',
      `witness quorum not met: ${cosignedBy.length} of ${keys.quorum} required cosignatures (valid: ${JSON.stringify(cosignedBy)})`,
    );
  }
  pass('witness_quorum', { cosigned_by: cosignTimes.join(', ') || '(none)', quorum: String(keys.quorum) });
  // 11. The RFC 3161 token over SHA-256(checkpoint body).
  let timestampUnix: bigint | null = null;
  let timestampUnchecked = false;
  if (cp.timestamp_token !== null) {
    if (keys.timestamps) {
      let t: bigint;
      try {
        t = keys.timestamps(cp.timestamp_token, digest('sha256', utf8.encode(note.text)));
      } catch (e) {
        throw new CheckError('timestamp', `RFC 3161 timestamp token: ${(e as Error).message}`);
      }
      if (satI64(t * 1_000_000n) < notBefore) {
        throw new CheckError('time_order', `time order: RFC 3161 genTime ${t} (Unix seconds) is before block ${blk.height} was sealed at ${blk.sealed_at_us} µs`);
      }
      timestampUnix = t;
      pass('timestamp', { gen_time_unix: String(t) });
    } else {
      timestampUnchecked = true;
      steps.push({ check: 'timestamp', ok: false, values: { token: 'present, NOT checked (no tsa_certs trusted)' } });
    }
  } else {
    pass('timestamp', { token: 'none' });
  }
  // 12. Anchor receipts.
  const anchors: string[] = [];
  b.anchor.receipts.forEach((r, i) => {
    const bad = (reason: string) => new CheckError('anchor_receipt', `anchor receipt of target ${JSON.stringify(r.target)}: ${reason}`);
    if (b.anchor.receipts.slice(0, i).some((o) => o.target === r.target)) throw bad('two receipts for the same target');
    if (r.checkpoint_size < cp.size) throw bad(`anchors checkpoint size ${r.checkpoint_size}, smaller than the bundle's ${cp.size}`);
    try {
      verifyConsistency(suite, cp.size, r.checkpoint_size, cp.root, r.checkpoint_root, r.consistency_proof);
    } catch (e) {
      if (!(e instanceof ProofError)) throw e;
      throw bad(
        `anchored checkpoint (size ${r.checkpoint_size}, root ${toHex(r.checkpoint_root)}) is not consistent with the bundle's checkpoint: ${e.message}`,
      );
    }
    if (r.tx_id === '' || r.chain_kind === '') throw bad('empty chain kind or transaction id');
    try {
      checkReceiptFields(r);
      checkRawReceipt(r, cp.origin);
    } catch (e) {
      throw bad((e as Error).message);
    }
    if (r.block_time_us < notBefore) {
      throw new CheckError(
        'time_order',
        `time order: target ${r.target}: anchored in a block of ${r.block_time_us} µs, before block ${blk.height} was sealed at ${blk.sealed_at_us} µs`,
      );
    }
    anchors.push(`${r.target}: ${r.chain_kind} ${r.chain_id} tx ${r.tx_id} block ${r.block_number}`);
  });
  const anchored = b.anchor.receipts.length > 0;
  if (anchored && b.anchor.expected_at_us !== null) {
    throw new CheckError(
      'anchor_receipt',
      'anchor receipt of target "": an anchored bundle states an expected anchor time (expected_at_us is for pending bundles only)',
    );
  }
  if (anchored !== (b.anchor.status === 'anchored')) {
    const st = b.anchor.status === 'anchored' ? 'Anchored' : 'Pending';
    throw new CheckError('anchor_receipt', `anchor receipt of target "": status ${st} but ${b.anchor.receipts.length} receipt(s)`);
  }
  pass('anchor_receipt', {
    status: b.anchor.status,
    receipts: anchors.join('; ') || (b.anchor.expected_at_us !== null ? `pending, expected by ${b.anchor.expected_at_us} µs` : 'pending'),
  });
  pass('time_order', { sealed_at_us: String(blk.sealed_at_us), received_at_us: String(b.entry.received_at_us) });
  return {
    evidence_hash: preserved,
    hash_alg: b.entry.hash_alg,
    tenant: b.entry.tenant,
    external_id: b.entry.external_id,
    seq: b.entry.seq,
    received_at_us: b.entry.received_at_us,
    block_height: blk.height,
    checkpoint_size: cp.size,
    checkpoint_origin: cp.origin,
    cosigned_by: cosignedBy,
    quorum: keys.quorum,
    timestamp_unix: timestampUnix,
    timestamp_unchecked: timestampUnchecked,
    anchored,
    anchors,
    keys_from_bundle: keys.fromBundle,
  };
}

void fromLowerHex;
void I64_MIN;

// ---------------------------------------------------------------- verdict

export type Verdict =
  | { verdict: 'VALID'; check: null; message: null; report: Report; steps: StepRecord[] }
  | { verdict: 'INVALID'; check: string; message: string; report: null; steps: StepRecord[] }
  | { verdict: 'UNTRUSTED'; check: string; message: string; report: Report | null; steps: StepRecord[] };

function invalid(e: unknown, steps: StepRecord[]): Verdict {
  if (e instanceof CheckError) {
    steps.push({ check: e.check, ok: false, values: { error: e.message } });
    return { verdict: 'INVALID', check: e.check, message: e.message, report: null, steps };
  }
  throw e;
}

/** The verdict under the court's policy (docs/trust-policy.md): never VALID without one. */
export function judge(b: Bundle, policy: TrustPolicy | null, expected: Uint8Array | null, timestamps: TimestampVerifier | null): Verdict {
  let own: Keys | null = null;
  let ownErr: unknown = null;
  try {
    own = keysFromBundle(b);
  } catch (e) {
    ownErr = e;
  }
  if (!policy) {
    if (!own) {
      void ownErr;
      return { verdict: 'INVALID', check: 'trusted_keys', message: 'the bundle declares no usable keys', report: null, steps: [] };
    }
    const steps: StepRecord[] = [];
    try {
      const r = verifyBundle(b, own, expected, steps);
      return {
        verdict: 'UNTRUSTED',
        check: 'no_trust_policy',
        message: 'signatures valid, signer not trusted: no trust policy was given (pass --trust with the court\'s trust policy file)',
        report: r,
        steps,
      };
    } catch (e) {
      return invalid(e, steps);
    }
  }
  const keys: Keys = {
    sealers: policy.sealers,
    witnesses: policy.witnesses,
    quorum: policy.quorum,
    timestamps: policy.tsaCerts.length > 0 ? timestamps : null,
    fromBundle: false,
  };
  const steps: StepRecord[] = [];
  let report: Report;
  try {
    report = verifyBundle(b, keys, expected, steps);
  } catch (e) {
    if (e instanceof CheckError && (e.check === 'sealer_signature' || e.check === 'witness_quorum') && own) {
      try {
        const r = verifyBundle(b, own, expected, []);
        const check = e.check === 'sealer_signature' ? 'sealer_not_trusted' : 'witness_not_trusted';
        steps.push({ check: e.check, ok: false, values: { error: e.message } });
        return {
          verdict: 'UNTRUSTED',
          check,
          message: `signatures valid, signer not trusted: under the trust policy ${e.message}`,
          report: r,
          steps,
        };
      } catch {
        // not even self-consistent: the policy's failure stands
      }
    }
    return invalid(e, steps);
  }
  if (policy.origins.length > 0 && !policy.origins.includes(b.checkpoint.origin)) {
    return {
      verdict: 'UNTRUSTED',
      check: 'origin_not_trusted',
      message: `checkpoint origin ${JSON.stringify(b.checkpoint.origin)} is not one the trust policy names`,
      report,
      steps,
    };
  }
  for (const r of b.anchor.receipts) {
    const c = policy.chains.get(r.target);
    if (c && (c.kind !== r.chain_kind || c.chain_id !== r.chain_id)) {
      const message = `target ${JSON.stringify(r.target)}: the receipt says ${r.chain_kind} chain ${JSON.stringify(r.chain_id)}, the trust policy says ${c.kind} chain ${JSON.stringify(c.chain_id)}`;
      steps.push({ check: 'anchor_receipt', ok: false, values: { error: message } });
      return { verdict: 'INVALID', check: 'anchor_registry', message, report: null, steps };
    }
  }
  const unknown = b.anchor.receipts.find((r) => !policy.chains.has(r.target));
  if (unknown) {
    return {
      verdict: 'UNTRUSTED',
      check: 'anchor_not_trusted',
      message: `anchor target ${JSON.stringify(unknown.target)} (${unknown.chain_kind} chain ${JSON.stringify(unknown.chain_id)}) is not in the trust policy's chain registry`,
      report,
      steps,
    };
  }
  return { verdict: 'VALID', check: null, message: null, report, steps };
}
