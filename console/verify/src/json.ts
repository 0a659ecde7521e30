// A strict JSON reader for proof bundles (RFC 8259, as serde_json reads it):
// numbers keep their lexeme (a bundle's integers are u64/i64 and must not
// pass through a double), object keys keep their order and duplicates are
// visible to the caller, lone surrogates and control characters in strings
// are rejected, nesting deeper than 128 levels is rejected.

export type JNum = { t: 'num'; raw: string };
export type JVal =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | JNum
  | { t: 'str'; v: string }
  | { t: 'arr'; v: JVal[] }
  | { t: 'obj'; v: [string, JVal][] };

export class JsonError extends Error {}

const MAX_DEPTH = 128;

export function parseJson(text: string): JVal {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    let line = 1;
    let col = 1;
    for (let k = 0; k < i && k < n; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        col = 1;
      } else col++;
    }
    throw new JsonError(`${what} at line ${line} column ${col}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = (): string => {
    // at '"'
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) fail('EOF while parsing a string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character (\\u0000-\\u001F) found while parsing a string');
      if (c >= 0xd800 && c <= 0xdfff) {
        // raw surrogates come only from well-formed UTF-16 pairs (the text was UTF-8)
        i++;
        continue;
      }
      if (c === 0x5c) {
        out += text.slice(start, i);
        i++;
        if (i >= n) fail('EOF while parsing a string');
        const e = text[i++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            const hex4 = (): number => {
              const h = text.slice(i, i + 4);
              if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('invalid escape');
              i += 4;
              return parseInt(h, 16);
            };
            const u = hex4();
            if (u >= 0xdc00 && u <= 0xdfff) fail('lone trailing surrogate in hex escape');
            if (u >= 0xd800 && u <= 0xdbff) {
              if (text[i] !== '\\' || text[i + 1] !== 'u') fail('lone leading surrogate in hex escape');
              i += 2;
              const lo = hex4();
              if (lo < 0xdc00 || lo > 0xdfff) fail('lone leading surrogate in hex escape');
              out += String.fromCharCode(u, lo);
            } else out += String.fromCharCode(u);
            break;
          }
          default:
            fail('invalid escape');
        }
        start = i;
        continue;
      }
      i++;
    }
  };
  const num = (): JNum => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 4096));
    if (!m || m[0] === '-' || m[0].length === 0) fail('invalid number');
    const raw = m![0];
    i += raw.length;
    // serde_json refuses a float that rounds to infinity
    if (/[.eE]/.test(raw) && !Number.isFinite(Number(raw))) fail('number out of range');
    // "01": serde_json refuses a digit after a leading zero
    if (i < n && /[0-9]/.test(text[i])) fail('invalid number');
    return { t: 'num', raw };
  };
  const lit = (word: string, v: JVal): JVal => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return v;
    }
    return fail('expected value');
  };
  const value = (depth: number): JVal => {
    ws();
    if (i >= n) fail('EOF while parsing a value');
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) fail('recursion limit exceeded');
      i++;
      if (c === '[') {
        const v: JVal[] = [];
        ws();
        if (text[i] === ']') {
          i++;
          return { t: 'arr', v };
        }
        for (;;) {
          v.push(value(depth + 1));
          ws();
          if (text[i] === ',') {
            i++;
            continue;
          }
          if (text[i] === ']') {
            i++;
            return { t: 'arr', v };
          }
          fail('expected `,` or `]`');
        }
      }
      const v: [string, JVal][] = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', v };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('key must be a string');
        const k = str();
        ws();
        if (text[i] !== ':') fail('expected `:`');
        i++;
        v.push([k, value(depth + 1)]);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'obj', v };
        }
        fail('expected `,` or `}`');
      }
    }
    if (c === '"') return { t: 'str', v: str() };
    if (c === 't') return lit('true', { t: 'bool', v: true });
    if (c === 'f') return lit('false', { t: 'bool', v: false });
    if (c === 'n') return lit('null', { t: 'null' });
    if (c === '-' || (c >= '0' && c <= '9')) return num();
    return fail('expected value');
  };
  const v = value(0);
  ws();
  if (i < n) fail('trailing characters');
  return v;
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** How serde_json classifies a number: an unsigned or a negative integer
 * that fits 64 bits, or else a float (fractions, exponents, `-0`, overflow). */
export function numKind(n: JNum): { kind: 'u64' | 'i64'; v: bigint } | { kind: 'f64' } {
  if (/[.eE]/.test(n.raw)) return { kind: 'f64' };
  const v = BigInt(n.raw);
  if (!n.raw.startsWith('-')) return v <= U64_MAX ? { kind: 'u64', v } : { kind: 'f64' };
  if (v === 0n || v < I64_MIN) return { kind: 'f64' };
  return { kind: 'i64', v };
}

/** serde_json `Value::as_u64`. */
export function asU64(j: JVal | undefined): bigint | undefined {
  if (!j || j.t !== 'num') return undefined;
  const k = numKind(j);
  return k.kind === 'u64' ? k.v : undefined;
}

/** serde_json `Value::as_i64`. */
export function asI64(j: JVal | undefined): bigint | undefined {
  if (!j || j.t !== 'num') return undefined;
  const k = numKind(j);
  if (k.kind === 'i64') return k.v;
  if (k.kind === 'u64' && k.v <= I64_MAX) return k.v;
  return undefined;
}

/** serde_json `Value::get(key)` on an object (the last of duplicate keys,
 * as serde_json's map keeps); `undefined` for non-objects. */
export function getKey(j: JVal | undefined, key: string): JVal | undefined {
  if (!j || j.t !== 'obj') return undefined;
  let found: JVal | undefined;
  for (const [k, v] of j.v) if (k === key) found = v;
  return found;
}

/** The compact JSON text of a value (serde_json's Display, numbers verbatim). */
export function jsonText(j: JVal): string {
  switch (j.t) {
    case 'null': return 'null';
    case 'bool': return String(j.v);
    case 'num': return j.raw;
    case 'str': return JSON.stringify(j.v);
    case 'arr': return '[' + j.v.map(jsonText).join(',') + ']';
    case 'obj': return '{' + j.v.map(([k, v]) => JSON.stringify(k) + ':' + jsonText(v)).join(',') + '}';
  }
}
