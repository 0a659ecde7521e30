// Registering the browser-held key with the server and signing a contract with it
// (docs/workflow-api.md "Signing keys and the signed statement").
import { ApiFailure, api, must, type Schemas } from '../api/client';
import { generateKey, heldKey, type HeldKey, markRegistered, registrationProof, signText } from './keys';
import { contractStatement } from './statement';

type Me = Schemas['Caller'];
type Contract = Schemas['ContractJson'];

/** Register this browser's key as the user's signing key (proof of possession over
 * a fresh challenge). Replaces the key the server had for the user. */
export async function registerKey(me: Me, key: HeldKey): Promise<HeldKey> {
  const ch = await must(api.POST('/v1/me/signing-key/challenge'));
  const proof = await registrationProof(key, me.username, ch.challenge);
  await must(api.PUT('/v1/me/signing-key', { body: { custody: 'client', public_key: key.publicKey, challenge: ch.challenge, proof } }));
  return markRegistered(key);
}

/** The key the server holds for the user (GET /v1/me/signing-key), or null when
 * none is registered (404 `no_signing_key`). */
export async function serverKey(): Promise<Schemas['RegisteredKeyJson'] | null> {
  try {
    return await must(api.GET('/v1/me/signing-key'));
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 404) return null;
    throw e;
  }
}

/** This browser's key for the user: made on first use, and registered unless the
 * server already holds exactly this key. */
export async function ensureKey(me: Me): Promise<HeldKey> {
  let key = await heldKey(me.id);
  if (!key) key = (await generateKey(me.id, false)).key;
  if (!key.registered) {
    const held = await serverKey();
    key = held?.public_key === key.publicKey ? await markRegistered(key) : await registerKey(me, key);
  }
  return key;
}

/** The exact statement the user signs in their slot of contract `c`. */
export function statementFor(c: Contract, signerIndex: number, me: Me, publicKey: string): string {
  return contractStatement({
    contractId: c.id,
    contractNumber: c.number,
    tenant: c.tenant,
    hashAlg: c.hash_alg,
    contractHash: c.contract_hash,
    signerIndex,
    signerUserId: me.id,
    signerUsername: me.username,
    publicKey,
  });
}

function signatureRefused(e: unknown): boolean {
  if (!(e instanceof ApiFailure) || e.status !== 422) return false;
  const f = (e.body as { error?: { fields?: Record<string, string> } } | undefined)?.error?.fields;
  return !!f && 'signature' in f;
}

/** Sign the user's slot of `c` with the browser-held key. The private key never
 * leaves the browser: only the signature is sent. When the server holds another
 * key for the user (registered elsewhere, or the platform's; GET
 * /v1/me/signing-key tells), this browser's key is registered again and the
 * signature made once more. */
export async function signContract(c: Contract, signerIndex: number, me: Me): Promise<void> {
  let key = await ensureKey(me);
  const send = async (k: HeldKey) =>
    must(
      api.POST('/v1/contracts/{id}/sign', {
        params: { path: { id: c.id } },
        body: { signature: await signText(k.privateKey, statementFor(c, signerIndex, me, k.publicKey)) },
      }),
    );
  try {
    await send(key);
  } catch (e) {
    if (!signatureRefused(e)) throw e;
    // Only another key on the server is mended by registering this one again: when
    // the server holds this very key, the signature was refused for another reason.
    if ((await serverKey())?.public_key === key.publicKey) throw e;
    key = await registerKey(me, key);
    await send(key);
  }
}
