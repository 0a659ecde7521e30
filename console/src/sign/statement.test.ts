import { describe, expect, it } from 'vitest';
import { contractStatement, fromHex, registrationStatement, toHex } from './statement';
import { importSeed, seedOfFile, signText } from './keys';

// The worked example of docs/workflow-api.md "Signing keys and the signed
// statement", the known answer of workflow/tests/security_contracts.rs
// (contract_signature_statement_known_answer).
const SEED = '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20';
const PUB = '79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664';
const HASH = 'e3b33ea112afa2283f2df5a9924e0adb0bf0bdf4c5179c42e6ac32192e2f56ae';
const STATEMENT =
  'anchord-contract-signature/v1\n' +
  'contract-id 17\n' +
  'contract-number HT0000000017\n' +
  'tenant bank-a\n' +
  'hash-alg sha256\n' +
  `contract-hash ${HASH}\n` +
  'signer-index 1\n' +
  'signer-user-id 42\n' +
  'signer-username signer2\n' +
  `public-key ${PUB}\n`;
const SIGNATURE =
  '1d3b1a77c96d412193ddf09e248ec8ce001699a68f4b4aaacefc4c9e31b43086268702f42a3dad20b21e44b29d54aeeb54a99c9a481a88ebb47a75fd0cc51d04';
const REG_SIGNATURE =
  '8076d9f4420c72a5f42652f66374f327fe1f03b56c624041892b7c17343720aaa7f4b479935cfdb2006eca3f1678871ebde61e287120c73d41c428cb7780a909';
const input = {
  contractId: 17,
  contractNumber: 'HT0000000017',
  tenant: 'bank-a',
  hashAlg: 'sha256',
  contractHash: HASH,
  signerIndex: 1,
  signerUserId: 42,
  signerUsername: 'signer2',
  publicKey: PUB,
};

describe('the signed statement (known answer of the spec and the Rust tests)', () => {
  it('is the spec text byte for byte', () => {
    expect(contractStatement(input)).toBe(STATEMENT);
    const body = '借款人 张三 向出借人 某银行 借款人民币 50000 元。';
    return crypto.subtle.digest('SHA-256', new TextEncoder().encode(body)).then((d) => expect(toHex(d)).toBe(HASH));
  });
  it('signs to the known signature with the known seed (WebCrypto Ed25519)', async () => {
    const k = await importSeed(fromHex(SEED));
    expect(k.publicKey).toBe(PUB);
    expect(k.privateKey.extractable).toBe(false);
    expect(await signText(k.privateKey, STATEMENT)).toBe(SIGNATURE);
  });
  it('signs the registration statement to the known proof', async () => {
    const challenge = '00'.repeat(16) + 'ff'.repeat(16);
    const reg = registrationStatement(42, 'signer2', PUB, challenge);
    expect(reg).toBe(`anchord-signing-key-registration/v1\nuser-id 42\nusername signer2\npublic-key ${PUB}\nchallenge ${challenge}\n`);
    const k = await importSeed(fromHex(SEED));
    expect(await signText(k.privateKey, reg)).toBe(REG_SIGNATURE);
  });
  it('refuses values outside the restricted alphabet rather than sign them', () => {
    expect(() => contractStatement({ ...input, signerUsername: 'a\nb' })).toThrow(/signer-username/);
    expect(() => contractStatement({ ...input, tenant: 'bank a' })).toThrow(/tenant/);
    expect(() => contractStatement({ ...input, contractHash: HASH.toUpperCase() })).toThrow(/contract-hash/);
    expect(() => contractStatement({ ...input, hashAlg: 'md5' })).toThrow(/hash-alg/);
    expect(() => contractStatement({ ...input, signerIndex: -1 })).toThrow(/signer-index/);
    expect(() => registrationStatement(42, 'x', PUB, 'abc')).toThrow(/challenge/);
  });
  it('reads a key file as the seed or its PKCS#8 hex, and nothing else', () => {
    expect(toHex(seedOfFile(`# comment\n${SEED}\n`))).toBe(SEED);
    expect(toHex(seedOfFile(`302e020100300506032b657004220420${SEED}`))).toBe(SEED);
    expect(() => seedOfFile('hello')).toThrow(/key file/);
    expect(() => seedOfFile(SEED.slice(2))).toThrow(/key file/);
  });
});
