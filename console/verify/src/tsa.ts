// RFC 3161 time-stamp tokens (docs/checkpoint-format.md §Trusted time):
// parsed with asn1js + pkijs, the signature checked with WebCrypto (RSA
// PKCS#1 v1.5 / SHA-256 or ECDSA P-256 / SHA-256) under a pinned TSA
// certificate. The checks are the ones the format lists: SignedData with
// eContentType id-ct-TSTInfo; messageImprint = SHA-256 of our digest input;
// signed attributes content-type = id-ct-TSTInfo and message-digest =
// SHA-256(eContent); the signature over the DER signed attributes.
import { sha256 } from '@noble/hashes/sha2.js';
import * as asn1js from 'asn1js';
import { Certificate, ContentInfo, SignedData, TSTInfo } from 'pkijs';
import { eq, toHex } from './bytes.ts';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_RSA = '1.2.840.113549.1.1.1';
const OID_SHA256_RSA = '1.2.840.113549.1.1.11';
const OID_EC = '1.2.840.10045.2.1';
const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';

const ab = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

function der<T>(bytes: Uint8Array, what: string, make: (schema: asn1js.AsnType) => T): T {
  const a = asn1js.fromBER(ab(bytes));
  if (a.offset === -1) throw new Error(`${what}: not DER`);
  try {
    return make(a.result);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

function octets(v: asn1js.OctetString): Uint8Array {
  if (v.valueBlock.isConstructed) {
    const parts = (v.valueBlock.value as asn1js.OctetString[]).map(octets);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
  return new Uint8Array(v.valueBlock.valueHexView);
}

/** ECDSA-Sig-Value (DER) to IEEE P1363 r ‖ s, 32 bytes each. */
function p1363(sigDer: Uint8Array): Uint8Array {
  const a = asn1js.fromBER(ab(sigDer));
  const seq = a.result as asn1js.Sequence;
  if (a.offset === -1 || !(seq instanceof asn1js.Sequence) || seq.valueBlock.value.length !== 2) throw new Error('ECDSA signature: not a DER SEQUENCE of r, s');
  const out = new Uint8Array(64);
  seq.valueBlock.value.forEach((x, i) => {
    if (!(x instanceof asn1js.Integer)) throw new Error('ECDSA signature: not an INTEGER');
    let v = new Uint8Array(x.valueBlock.valueHexView);
    while (v.length > 32 && v[0] === 0) v = v.slice(1);
    if (v.length > 32) throw new Error('ECDSA signature: integer too long');
    out.set(v, i * 32 + (32 - v.length));
  });
  return out;
}

/** Verify `token` over `digest` (SHA-256 of the checkpoint body) under `certDer`; genTime in Unix seconds. */
export async function verifyToken(token: Uint8Array, digest: Uint8Array, certDer: Uint8Array): Promise<bigint> {
  const ci = der(token, 'token is not ContentInfo', (s) => new ContentInfo({ schema: s }));
  if (ci.contentType !== OID_SIGNED_DATA) throw new Error('token is not CMS SignedData');
  // Strict, as a DER decoder: nothing the schema does not read (asn1js keeps
  // stray elements after a shortened length; re-encoding drops them).
  if (!eq(new Uint8Array(ci.toSchema().toBER(false)), token)) throw new Error('token is not ContentInfo: extra or malformed data');
  let sd: SignedData;
  try {
    sd = new SignedData({ schema: ci.content });
  } catch (e) {
    throw new Error(`token SignedData: ${(e as Error).message}`);
  }
  const sdBytes = new Uint8Array((ci.content as asn1js.AsnType).toBER(false));
  if (!eq(new Uint8Array(sd.toSchema(true).toBER(false)), sdBytes)) throw new Error('token SignedData: extra or malformed data');
  if (sd.encapContentInfo.eContentType !== OID_TST_INFO) throw new Error('eContentType is not id-ct-TSTInfo');
  const ec = sd.encapContentInfo.eContent;
  if (!ec) throw new Error('no TSTInfo in the token');
  const econtent = octets(ec);
  const tst = der(econtent, 'TSTInfo', (s) => new TSTInfo({ schema: s }));
  if (tst.messageImprint.hashAlgorithm.algorithmId !== OID_SHA256) throw new Error('messageImprint is not SHA-256');
  const imprint = new Uint8Array(tst.messageImprint.hashedMessage.valueBlock.valueHexView);
  if (!eq(imprint, digest)) throw new Error(`messageImprint ${toHex(imprint)} is not the digest ${toHex(digest)}`);
  const signer = sd.signerInfos[0];
  if (!signer) throw new Error('no signer');
  if (signer.digestAlgorithm.algorithmId !== OID_SHA256) throw new Error('signer digest algorithm is not SHA-256');
  const attrs = signer.signedAttrs;
  if (!attrs) throw new Error('no signed attributes');
  const attr = (oid: string) => attrs.attributes.find((a) => a.type === oid)?.values[0];
  const ct = attr(OID_CONTENT_TYPE);
  if (!ct) throw new Error('no content-type attribute');
  if (!(ct instanceof asn1js.ObjectIdentifier) || ct.valueBlock.toString() !== OID_TST_INFO) {
    throw new Error('content-type attribute is not id-ct-TSTInfo');
  }
  const md = attr(OID_MESSAGE_DIGEST);
  if (!md) throw new Error('no message-digest attribute');
  if (!(md instanceof asn1js.OctetString) || !eq(octets(md), sha256(econtent))) {
    throw new Error('message-digest attribute does not match the TSTInfo');
  }
  // The signature covers the attributes' DER as a SET (tag 0x31, not [0]).
  const signed = new Uint8Array(attrs.encodedValue.slice(0));
  signed[0] = 0x31;
  const cert = der(certDer, 'TSA certificate', (s) => new Certificate({ schema: s }));
  const spki = new Uint8Array(cert.subjectPublicKeyInfo.toSchema().toBER(false));
  const keyAlg = cert.subjectPublicKeyInfo.algorithm.algorithmId;
  const sigAlg = signer.signatureAlgorithm.algorithmId;
  const sig = new Uint8Array(signer.signature.valueBlock.valueHexView);
  const subtle = globalThis.crypto.subtle;
  let ok: boolean;
  if (keyAlg === OID_RSA) {
    if (sigAlg !== OID_RSA && sigAlg !== OID_SHA256_RSA) throw new Error('RSA key but a non-RSA signature algorithm');
    let key: CryptoKey;
    try {
      key = await subtle.importKey('spki', ab(spki), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
    } catch (e) {
      throw new Error(`TSA RSA key: ${(e as Error).message}`);
    }
    ok = await subtle.verify('RSASSA-PKCS1-v1_5', key, ab(sig), ab(signed));
  } else if (keyAlg === OID_EC) {
    if (sigAlg !== OID_ECDSA_SHA256) throw new Error('EC key but not ecdsa-with-SHA256');
    let key: CryptoKey;
    try {
      key = await subtle.importKey('spki', ab(spki), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    } catch (e) {
      throw new Error(`TSA EC key (P-256 only): ${(e as Error).message}`);
    }
    ok = await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, ab(p1363(sig)), ab(signed));
  } else {
    throw new Error('unsupported TSA key type (RSA or ECDSA P-256)');
  }
  if (!ok) throw new Error('token signature does not verify under the TSA certificate');
  return BigInt(Math.floor(tst.genTime.getTime() / 1000));
}
