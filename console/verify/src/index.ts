// Anchord's second, independent proof-bundle verifier (docs/proof-format.md,
// docs/trust-policy.md): what `anchord verify --json` answers offline.
import { fromAnyHex, toHex } from './bytes.ts';
import { type Bundle, FormatError, parseBundle } from './bundle.ts';
import { incremental } from './hashes.ts';
import { NoteError, parseNote } from './note.ts';
import { type CertLoader, PolicyError, parsePolicy, type TrustPolicy } from './policy.ts';
import { verifyToken } from './tsa.ts';
import { digest } from './hashes.ts';
import { utf8 } from './bytes.ts';
import { judge, type Report, type StepRecord, type TimestampVerifier } from './verify.ts';

export type { Bundle, Report, StepRecord, TrustPolicy };
export { parseBundle, parsePolicy };

export type VerdictWord = 'VALID' | 'INVALID' | 'UNTRUSTED' | 'UNCONFIRMED' | 'ERROR';

export interface Result {
  verdict: VerdictWord;
  check: string | null;
  message: string | null;
  /** `anchord verify`'s exit code: 0 VALID, 1 INVALID, 2 usage error, 3 UNTRUSTED, 4 UNCONFIRMED. */
  exit: 0 | 1 | 2 | 3 | 4;
  trust_policy_sha256: string | null;
  report: Report | null;
  online: never[];
  /** Every check run, with its values (passed) or its error (the failed one). */
  steps: StepRecord[];
  bundle: Bundle | null;
}

export type Evidence =
  | { kind: 'bytes'; bytes: Uint8Array }
  /** A digest computed elsewhere (the page's streaming worker) for `alg`. */
  | { kind: 'digest'; digest: Uint8Array }
  /** Typed by a person: 64 or 128 hex digits. */
  | { kind: 'hex'; hex: string };

export interface Options {
  /** Reads `tsa_certs` paths (the CLI); without it a path is a policy error. */
  loadCert?: CertLoader;
}

const EXIT = { VALID: 0, INVALID: 1, ERROR: 2, UNTRUSTED: 3, UNCONFIRMED: 4 } as const;

function result(verdict: VerdictWord, check: string | null, message: string | null, rest: Partial<Result> = {}): Result {
  return {
    verdict,
    check,
    message,
    exit: EXIT[verdict],
    trust_policy_sha256: null,
    report: null,
    online: [],
    steps: [],
    bundle: null,
    ...rest,
  };
}

/** Decode a bundle file's bytes as UTF-8 exactly (a BOM is kept, and rejected by the JSON parser). */
export function decodeText(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Error(`reading ${what}: stream did not contain valid UTF-8`);
  }
}

/**
 * Verify a proof bundle offline against the court's trust policy (TOML text,
 * or null: then at best UNTRUSTED (no_trust_policy)) and, optionally, the
 * evidence. The answer mirrors `anchord verify --json` (verdict, check,
 * message, trust_policy_sha256, report) plus the exit code and each check.
 */
export async function verify(
  bundleBytes: Uint8Array,
  trustPolicyText: string | null,
  evidence?: Evidence,
  opts: Options = {},
): Promise<Result> {
  let text: string;
  try {
    text = decodeText(bundleBytes, 'the bundle');
  } catch (e) {
    return result('ERROR', null, (e as Error).message);
  }
  let b: Bundle;
  try {
    b = parseBundle(text);
  } catch (e) {
    if (e instanceof FormatError) {
      return result('INVALID', 'format', e.message, { steps: [{ check: 'format', ok: false, values: { error: e.message } }] });
    }
    throw e;
  }
  let expected: Uint8Array | null = null;
  if (evidence?.kind === 'bytes') {
    const h = incremental(b.entry.hash_alg);
    h.update(evidence.bytes);
    expected = h.digest();
  } else if (evidence?.kind === 'digest') {
    expected = evidence.digest;
  } else if (evidence?.kind === 'hex') {
    const v = fromAnyHex(evidence.hex.trim());
    if (!v || (v.length !== 32 && v.length !== 64)) return result('ERROR', null, '--hash must be 64 or 128 hex digits', { bundle: b });
    expected = v;
  }
  let policy: TrustPolicy | null = null;
  if (trustPolicyText !== null) {
    try {
      policy = parsePolicy(trustPolicyText, opts.loadCert);
    } catch (e) {
      if (e instanceof PolicyError || e instanceof Error) return result('ERROR', null, `--trust: ${e.message}`, { bundle: b });
      throw e;
    }
  }
  // RFC 3161 (async WebCrypto): checked up front, handed to the in-order checks.
  let timestamps: TimestampVerifier | null = null;
  if (policy && policy.tsaCerts.length > 0 && b.checkpoint.timestamp_token) {
    let outcome: { ok: true; t: bigint } | { ok: false; e: string } = { ok: false, e: 'not checked' };
    let noteText: string | null = null;
    try {
      noteText = parseNote(b.checkpoint.signed_note).text;
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
    }
    if (noteText !== null) {
      const d = digest('sha256', utf8.encode(noteText));
      let last = 'no TSA certificate is trusted';
      for (const cert of policy.tsaCerts) {
        try {
          outcome = { ok: true, t: await verifyToken(b.checkpoint.timestamp_token, d, cert) };
          break;
        } catch (e) {
          last = (e as Error).message;
          outcome = { ok: false, e: last };
        }
      }
    }
    const dHex = noteText === null ? null : toHex(digest('sha256', utf8.encode(noteText)));
    timestamps = (_token, dg) => {
      if (toHex(dg) !== dHex) throw new Error('internal: digest changed');
      if (outcome.ok) return outcome.t;
      throw new Error(outcome.e);
    };
  }
  const v = judge(b, policy, expected, timestamps);
  return result(v.verdict, v.check, v.message, {
    report: v.report,
    steps: v.steps,
    trust_policy_sha256: policy?.fingerprint ?? null,
    bundle: b,
  });
}

/** JSON text of a result as `anchord verify --json` prints it (u64 values as JSON integers). */
export function resultJson(r: Result): string {
  const out = {
    verdict: r.verdict,
    check: r.check,
    message: r.message,
    trust_policy_sha256: r.trust_policy_sha256,
    report: r.report,
    online: r.online,
  };
  return JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? `@@big:${v}@@` : v), 2).replace(/"@@big:(-?[0-9]+)@@"/g, '$1');
}
