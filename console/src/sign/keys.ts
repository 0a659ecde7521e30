// The signing key held in the browser (custody "client"): Ed25519 through WebCrypto,
// the private key kept as a NON-extractable CryptoKey in IndexedDB (a script of this
// origin can sign with it but never read it), one per user of this browser. The
// user may take a backup: a key generated for a backup is exported once as a file
// (PKCS#8, hex) the user saves, and only its non-extractable re-import is kept.
// The private key is never sent anywhere: the server gets the public key, a proof of
// possession (a signature over the registration statement) and signatures.
import { fromHex, registrationStatement, toHex } from './statement';

const ALG = { name: 'Ed25519' } as const;
const DB = 'anchord-keys';
const STORE = 'signing-keys';
/** PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410). */
const PKCS8_PREFIX = '302e020100300506032b657004220420';

export interface HeldKey {
  userId: number;
  publicKey: string;
  privateKey: CryptoKey;
  createdAt: string;
  /** The server accepted it (PUT /v1/me/signing-key) from this browser. */
  registered?: boolean;
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((ok, bad) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'userId' });
    r.onsuccess = () => ok(r.result);
    r.onerror = () => bad(r.error ?? new Error('IndexedDB is unavailable'));
  });
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((ok, bad) => {
      const t = db.transaction(STORE, mode);
      const r = f(t.objectStore(STORE));
      t.oncomplete = () => ok(r.result);
      t.onerror = () => bad(t.error ?? new Error('IndexedDB transaction failed'));
    });
  } finally {
    db.close();
  }
}

export async function heldKey(userId: number): Promise<HeldKey | undefined> {
  return (await tx<HeldKey | undefined>('readonly', (s) => s.get(userId) as IDBRequest<HeldKey | undefined>)) ?? undefined;
}

export async function forgetKey(userId: number): Promise<void> {
  await tx('readwrite', (s) => s.delete(userId));
}

export async function markRegistered(k: HeldKey): Promise<HeldKey> {
  const r = { ...k, registered: true };
  await tx('readwrite', (s) => s.put(r));
  return r;
}

async function keep(userId: number, publicKey: string, privateKey: CryptoKey): Promise<HeldKey> {
  const k: HeldKey = { userId, publicKey, privateKey, createdAt: new Date().toISOString() };
  await tx('readwrite', (s) => s.put(k));
  return k;
}

/** The key pair for a 32-byte seed, the private half non-extractable. */
export async function importSeed(seed: Uint8Array<ArrayBuffer>): Promise<{ publicKey: string; privateKey: CryptoKey }> {
  if (seed.length !== 32) throw new Error('an Ed25519 key file holds 32 bytes (64 hex digits), or its PKCS#8 form');
  const pkcs8 = fromHex(PKCS8_PREFIX + toHex(seed));
  // The public half: import once extractable (as JWK) to read x, then keep the
  // non-extractable import only.
  const tmp = await crypto.subtle.importKey('pkcs8', pkcs8, ALG, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', tmp);
  const x = jwk.x ?? '';
  const pub = Uint8Array.from(atob(x.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, ALG, false, ['sign']);
  return { publicKey: toHex(pub), privateKey };
}

/** A file that is not a key file. */
export class KeyFileError extends Error {}

/** Parse a key file: 64 hex digits (the seed) or the hex of its PKCS#8 form. */
export function seedOfFile(text: string): Uint8Array<ArrayBuffer> {
  const h = text.replace(/^#.*$/gm, '').replace(/\s+/g, '').toLowerCase();
  if (/^[0-9a-f]{64}$/.test(h)) return fromHex(h);
  if (h.length === 96 && h.startsWith(PKCS8_PREFIX)) return fromHex(h.slice(PKCS8_PREFIX.length));
  throw new KeyFileError('not an Ed25519 key file (64 hex digits of the seed, or its PKCS#8 form in hex)');
}

/** A new key for this user, kept in this browser. With `backup`, the seed is also
 * returned (once) for the user to save as a file. */
export async function generateKey(userId: number, backup: boolean): Promise<{ key: HeldKey; backupFile?: string }> {
  if (backup) {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const k = await importSeed(seed);
    const key = await keep(userId, k.publicKey, k.privateKey);
    const backupFile = `# Anchord signing key (Ed25519 seed, hex): keep it secret\n# public key ${k.publicKey}\n${toHex(seed)}\n`;
    seed.fill(0);
    return { key, backupFile };
  }
  const pair = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
  const pub = toHex(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { key: await keep(userId, pub, pair.privateKey) };
}

/** Import a key file for this user (kept non-extractable). */
export async function importKeyFile(userId: number, text: string): Promise<HeldKey> {
  const k = await importSeed(seedOfFile(text));
  return keep(userId, k.publicKey, k.privateKey);
}

export async function signText(privateKey: CryptoKey, text: string): Promise<string> {
  return toHex(await crypto.subtle.sign(ALG, privateKey, new TextEncoder().encode(text)));
}

/** Whether this browser signs Ed25519 through WebCrypto. */
export async function webCryptoEd25519(): Promise<boolean> {
  try {
    await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
    return true;
  } catch {
    return false;
  }
}

/** The proof of possession for registering `key` with the challenge the server gave. */
export async function registrationProof(key: HeldKey, username: string, challenge: string): Promise<string> {
  return signText(key.privateKey, registrationStatement(key.userId, username, key.publicKey, challenge));
}

/** `SHA256:` + hex SHA-256 of the 32 key bytes (as contract certificates show it). */
export async function fingerprint(publicKey: string): Promise<string> {
  return `SHA256:${toHex(await crypto.subtle.digest('SHA-256', fromHex(publicKey)))}`;
}
