// Byte helpers with the format's strict spellings: lowercase hex only,
// RFC 4648 standard base64 with canonical padding and zero trailing bits.

export const utf8 = new TextEncoder();

export function utf8Len(s: string): number {
  return utf8.encode(s).length;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function eq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Lowercase hex only; an error names the first offending character. */
export function fromLowerHex(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      if (/[A-F]/.test(c)) throw new Error(`uppercase hex digit '${c}' at ${i}: hex is lowercase`);
      throw new Error(`not hex: ${JSON.stringify(String.fromCodePoint(s.codePointAt(i)!))} at ${i}`);
    }
  }
  if (s.length % 2 !== 0) throw new Error('not hex: odd number of digits');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Hex in either case (the command line's `--hash`). */
export function fromAnyHex(s: string): Uint8Array | undefined {
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) return undefined;
  return fromLowerHex(s.toLowerCase());
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_REV = new Map<string, number>([...B64].map((c, i) => [c, i]));

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    s += i + 1 < b.length ? B64[(n >> 6) & 63] : '=';
    s += i + 2 < b.length ? B64[n & 63] : '=';
  }
  return s;
}

/** Standard base64, padded, canonical (no non-zero trailing bits); `undefined` otherwise. */
export function fromBase64(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 4) {
    const q = s.slice(i, i + 4);
    const last = i + 4 === s.length;
    let pad = 0;
    if (last) {
      if (q[3] === '=') pad = q[2] === '=' ? 2 : 1;
    }
    const vals: number[] = [];
    for (let k = 0; k < 4 - pad; k++) {
      const v = B64_REV.get(q[k]);
      if (v === undefined) return undefined;
      vals.push(v);
    }
    for (let k = 4 - pad; k < 4; k++) if (q[k] !== '=') return undefined;
    const n = (vals[0] << 18) | (vals[1] << 12) | ((vals[2] ?? 0) << 6) | (vals[3] ?? 0);
    out.push((n >> 16) & 255);
    if (pad < 2) out.push((n >> 8) & 255);
    if (pad < 1) out.push(n & 255);
    if (pad === 2 && (vals[1] & 15) !== 0) return undefined;
    if (pad === 1 && (vals[2] & 3) !== 0) return undefined;
  }
  return new Uint8Array(out);
}

/** Rust's `char::is_whitespace` (Unicode White_Space). */
export function isRustWhitespace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x20 ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** Rust's `char::is_control` (general category Cc). */
export function isRustControl(cp: number): boolean {
  return cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
}

export function anyChar(s: string, pred: (cp: number) => boolean): boolean {
  for (const ch of s) if (pred(ch.codePointAt(0)!)) return true;
  return false;
}

/** Rust's `str::trim() == s`: no leading or trailing White_Space. */
export function isTrimmed(s: string): boolean {
  const cps = [...s];
  if (cps.length === 0) return true;
  return !isRustWhitespace(cps[0].codePointAt(0)!) && !isRustWhitespace(cps[cps.length - 1].codePointAt(0)!);
}

export function u64be(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return b;
}

export function i64be(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt.asIntN(64, v));
  return b;
}

export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;

export function satI64(v: bigint): bigint {
  return v < I64_MIN ? I64_MIN : v > I64_MAX ? I64_MAX : v;
}
