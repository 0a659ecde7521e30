// The statements a signing key signs (docs/workflow-api.md "Signing keys and the
// signed statement"): a second, independent writing of the text the server checks
// (workflow/src/contracts.rs), byte for byte. Every value comes from a restricted
// alphabet; a value outside it is refused here rather than signed.

const SAFE = /^[A-Za-z0-9._@-]+$/;
const HEX64 = /^[0-9a-f]{64}$/;

function safe(name: string, v: string | number): string {
  const s = String(v);
  if (!SAFE.test(s)) throw new Error(`${name} has characters outside [A-Za-z0-9._@-]: ${JSON.stringify(s)}`);
  return s;
}

function hex64(name: string, v: string): string {
  if (!HEX64.test(v)) throw new Error(`${name} must be 64 lowercase hex digits`);
  return v;
}

function decimal(name: string, v: number): string {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
  return String(v);
}

export interface ContractStatementInput {
  contractId: number;
  contractNumber: string;
  tenant: string;
  hashAlg: string;
  contractHash: string;
  signerIndex: number;
  signerUserId: number;
  signerUsername: string;
  publicKey: string;
}

/** `anchord-contract-signature/v1`: what a signer of a contract signs. */
export function contractStatement(i: ContractStatementInput): string {
  if (i.hashAlg !== 'sha256' && i.hashAlg !== 'sm3') throw new Error(`unknown hash-alg ${i.hashAlg}`);
  return [
    'anchord-contract-signature/v1',
    `contract-id ${decimal('contract-id', i.contractId)}`,
    `contract-number ${safe('contract-number', i.contractNumber)}`,
    `tenant ${safe('tenant', i.tenant)}`,
    `hash-alg ${i.hashAlg}`,
    `contract-hash ${hex64('contract-hash', i.contractHash)}`,
    `signer-index ${decimal('signer-index', i.signerIndex)}`,
    `signer-user-id ${decimal('signer-user-id', i.signerUserId)}`,
    `signer-username ${safe('signer-username', i.signerUsername)}`,
    `public-key ${hex64('public-key', i.publicKey)}`,
    '',
  ].join('\n');
}

/** `anchord-signing-key-registration/v1`: the proof of possession of a new key. */
export function registrationStatement(userId: number, username: string, publicKey: string, challenge: string): string {
  return [
    'anchord-signing-key-registration/v1',
    `user-id ${decimal('user-id', userId)}`,
    `username ${safe('username', username)}`,
    `public-key ${hex64('public-key', publicKey)}`,
    `challenge ${hex64('challenge', challenge)}`,
    '',
  ].join('\n');
}

export function toHex(b: ArrayBuffer | Uint8Array): string {
  return Array.from(b instanceof Uint8Array ? b : new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
}

export function fromHex(h: string): Uint8Array<ArrayBuffer> {
  const s = h.trim();
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new Error('not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
