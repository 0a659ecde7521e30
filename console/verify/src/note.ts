// C2SP signed notes, tlog checkpoints and cosignature/v1
// (docs/checkpoint-format.md): vkeys, note parsing, signature checks.
import * as ed from '@noble/ed25519';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { anyChar, concat, eq, fromBase64, isRustControl, isRustWhitespace, isTrimmed, toHex, utf8, utf8Len } from './bytes.ts';

ed.hashes.sha512 = sha512;

export const ALG_ED25519 = 0x01;
export const ALG_COSIGNATURE_V1 = 0x04;
const SIG_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;
const MAX_NOTE_LEN = 1 << 20;

export class NoteError extends Error {
  constructor(
    public kind: 'malformed' | 'checkpoint' | 'key' | 'bad_signature' | 'missing_signature',
    message: string,
  ) {
    super(message);
  }
}

export interface Vkey {
  name: string;
  alg: number;
  keyId: Uint8Array;
  key: Uint8Array;
  text: string;
}

export function validKeyName(name: string): boolean {
  return !(
    name.length === 0 ||
    utf8Len(name) > 256 ||
    name.includes('+') ||
    anyChar(name, (c) => isRustWhitespace(c) || isRustControl(c))
  );
}

export function keyId(name: string, alg: number, key: Uint8Array): Uint8Array {
  return sha256(concat(utf8.encode(name), new Uint8Array([0x0a, alg]), key)).slice(0, 4);
}

/** `<name>+<8 hex key id>+<base64(alg ‖ key)>`, split at the first two `+`. */
export function parseVkey(text: string): Vkey {
  const bad = (m: string) => new NoteError('key', `malformed key: verifier key: ${m}`);
  const a = text.indexOf('+');
  const b = a < 0 ? -1 : text.indexOf('+', a + 1);
  if (a < 0 || b < 0) throw bad('want <name>+<hex key id>+<base64 key>');
  const name = text.slice(0, a);
  const idHex = text.slice(a + 1, b);
  if (!validKeyName(name)) throw new NoteError('key', `malformed key: key name ${JSON.stringify(name)} must be non-empty with no spaces or '+'`);
  const blob = fromBase64(text.slice(b + 1));
  if (!blob) throw bad('key is not base64');
  if (blob.length !== 33) throw bad('key is not 1 + 32 bytes');
  const alg = blob[0];
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) {
    throw new NoteError('key', `malformed key: unsupported signature algorithm byte 0x${alg.toString(16).padStart(2, '0')} (want 0x01 Ed25519 or 0x04 cosignature/v1)`);
  }
  const key = blob.slice(1);
  try {
    ed.Point.fromBytes(key, true);
  } catch {
    throw bad('not an Ed25519 public key');
  }
  const id = keyId(name, alg, key);
  if (idHex.length !== 8 || toHex(id) !== idHex) throw bad('key id does not match the key');
  return { name, alg, keyId: id, key, text };
}

export interface NoteSig {
  name: string;
  keyId: Uint8Array;
  payload: Uint8Array;
}

export interface SignedNote {
  text: string;
  sigs: NoteSig[];
}

export function parseNote(note: string): SignedNote {
  const bad = (m: string) => new NoteError('malformed', `malformed note: ${m}`);
  if (utf8Len(note) > MAX_NOTE_LEN) throw bad('too long');
  if (note.includes('\r')) throw bad('contains a carriage return');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw bad('no blank line between text and signatures');
  const text = note.slice(0, split + 1);
  let rest = note.slice(split + 2);
  if (!rest.endsWith('\n')) throw bad('does not end with a newline');
  rest = rest.slice(0, -1);
  const sigs: NoteSig[] = [];
  for (const line of rest.split('\n')) {
    if (!line.startsWith(SIG_PREFIX)) throw bad('signature line does not start with "— "');
    const r = line.slice(SIG_PREFIX.length);
    const sp = r.indexOf(' ');
    if (sp < 0) throw bad('signature line has no key name');
    const name = r.slice(0, sp);
    if (!validKeyName(name)) throw bad('bad key name');
    const blob = fromBase64(r.slice(sp + 1));
    if (!blob) throw bad('signature is not base64');
    if (blob.length < 5) throw bad('signature too short');
    sigs.push({ name, keyId: blob.slice(0, 4), payload: blob.slice(4) });
    if (sigs.length > MAX_SIGNATURES) throw bad('too many signatures');
  }
  return { text, sigs };
}

export interface CheckpointBody {
  origin: string;
  size: bigint;
  root: Uint8Array;
  extensions: string[];
}

export function validOrigin(origin: string): boolean {
  return !(origin.length === 0 || anyChar(origin, isRustControl) || !isTrimmed(origin) || utf8Len(origin) > 256);
}

export function parseDecimal(s: string): bigint | undefined {
  if (!/^[0-9]+$/.test(s) || (s.length > 1 && s[0] === '0')) return undefined;
  const v = BigInt(s);
  return v < 1n << 64n ? v : undefined;
}

export function parseCheckpoint(body: string): CheckpointBody {
  const bad = (m: string) => new NoteError('checkpoint', `checkpoint body: ${m}`);
  if (!body.endsWith('\n')) throw bad('does not end with a newline');
  const lines = body.slice(0, -1).split('\n');
  const origin = lines[0] ?? '';
  if (!validOrigin(origin)) {
    throw bad(`origin ${JSON.stringify([...origin].slice(0, 80).join(''))} must be 1 to 256 printable characters without leading or trailing space`);
  }
  if (lines.length < 2) throw bad('missing the size line');
  const size = parseDecimal(lines[1]);
  if (size === undefined) throw bad('size is not a canonical decimal');
  if (lines.length < 3) throw bad('missing the root line');
  const root = fromBase64(lines[2]);
  if (!root || root.length !== 32) throw bad('root is not base64 of 32 bytes');
  const extensions = lines.slice(3);
  if (extensions.some((e) => e === '')) throw bad('empty extension line');
  return { origin, size, root, extensions };
}

export function cosignatureMessage(t: bigint, body: string): string {
  return `cosignature/v1\ntime ${t}\n${body}`;
}

/** Verify one line; the cosignature time for cosignature/v1 keys, `null` for note keys. */
function verifyLine(v: Vkey, text: string, s: NoteSig): bigint | null | false {
  let msg: string;
  let raw: Uint8Array;
  let time: bigint | null = null;
  if (v.alg === ALG_ED25519) {
    msg = text;
    raw = s.payload;
  } else {
    if (s.payload.length !== 72) return false;
    time = new DataView(s.payload.buffer, s.payload.byteOffset, 8).getBigUint64(0);
    msg = cosignatureMessage(time, text);
    raw = s.payload.slice(8);
  }
  if (raw.length !== 64) return false;
  let ok = false;
  try {
    ok = ed.verify(raw, utf8.encode(msg), v.key, { zip215: false });
  } catch {
    ok = false;
  }
  return ok ? time : false;
}

/** The signature by `v` on the note: a missing one and one that does not verify are errors. */
export function verifyBy(note: SignedNote, v: Vkey): bigint | null {
  let found = false;
  for (const s of note.sigs) {
    if (s.name !== v.name || !eq(s.keyId, v.keyId)) continue;
    found = true;
    const r = verifyLine(v, note.text, s);
    if (r !== false) return r;
  }
  const id = toHex(v.keyId);
  if (found) throw new NoteError('bad_signature', `signature by ${v.name} (key id ${id}) does not verify`);
  throw new NoteError('missing_signature', `no signature by ${v.name} (key id ${id}) on the note`);
}
