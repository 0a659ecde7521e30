//! Platform-held signing keys, sealed at rest.
//!
//! When a signer lets the platform keep their Ed25519 key (`"custody":
//! "platform"`), its 32-byte seed is stored only sealed with
//! XChaCha20-Poly1305 under the key-encryption key (KEK) read from
//! `workflow.key_encryption_key_file`. The column `platform_seed_sealed`
//! holds
//!
//! ```text
//! version (1 byte, = 1) || kek_id (8) || nonce (24, random) || ciphertext (32) || tag (16)
//! ```
//!
//! with associated data `"anchord-workflow/signing-key/v1" || kek_id ||
//! user_id (i64 big-endian: the row's id) || public_key (32)`, so a sealed
//! seed cannot be moved to another row, paired with another public key, or
//! opened under another KEK without detection. `kek_id` is the first 8 bytes
//! of SHA-256("anchord-workflow/kek-id/v1" || KEK): it names the KEK without
//! revealing it, and tells a rotated or wrong KEK apart from tampering.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer as _, SigningKey};

use crate::WorkflowError;

/// The column format's version byte.
pub const VERSION: u8 = 1;
const KEK_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Length of a version-1 sealed seed.
pub const SEALED_LEN: usize = 1 + KEK_ID_LEN + NONCE_LEN + 32 + TAG_LEN;
const AAD_LABEL: &[u8] = b"anchord-workflow/signing-key/v1";

/// The key-encryption key.
pub struct Kek {
    cipher: XChaCha20Poly1305,
    id: [u8; KEK_ID_LEN],
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &hex::encode(self.id))
            .finish_non_exhaustive()
    }
}

/// Why a sealed seed does not open.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("unknown sealed-seed format version {0}")]
    Version(u8),
    #[error("the sealed seed has {0} bytes; version 1 has {SEALED_LEN}")]
    Length(usize),
    #[error("sealed under the key-encryption key {sealed}, but {configured} is configured")]
    OtherKek { sealed: String, configured: String },
    #[error("the sealed seed does not authenticate (tampered, or moved to another row)")]
    Tampered,
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(key: &[u8; 32]) -> Kek {
        let mut h = Vec::with_capacity(64);
        h.extend_from_slice(b"anchord-workflow/kek-id/v1");
        h.extend_from_slice(key);
        let digest = crate::sha256(&h);
        let mut id = [0u8; KEK_ID_LEN];
        id.copy_from_slice(&digest[..KEK_ID_LEN]);
        Kek {
            cipher: XChaCha20Poly1305::new(key.into()),
            id,
        }
    }

    /// Read the KEK file: 64 hex digits (surrounding whitespace ignored) or
    /// exactly 32 raw bytes.
    pub fn load(path: &Path) -> Result<Kek, WorkflowError> {
        let bad = |why: String| {
            WorkflowError::Config(format!(
                "workflow.key_encryption_key_file {}: {why}",
                path.display()
            ))
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let text = std::str::from_utf8(&bytes).ok().map(str::trim);
        let key: [u8; 32] = match text {
            Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let mut k = [0u8; 32];
                hex::decode_to_slice(t, &mut k).map_err(|e| bad(e.to_string()))?;
                k
            }
            _ if bytes.len() == 32 => bytes
                .as_slice()
                .try_into()
                .map_err(|_| bad("not 32 bytes".into()))?,
            _ => {
                return Err(bad(
                    "must hold 32 random bytes: 64 hex digits (e.g. `openssl rand -hex 32`) or 32 raw bytes"
                        .into(),
                ));
            }
        };
        if key == [0u8; 32] {
            return Err(bad("the key is all zeros".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if let Ok(m) = std::fs::metadata(path)
                && m.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    "workflow.key_encryption_key_file is readable by group or others; chmod 600 it"
                );
            }
        }
        Ok(Kek::from_bytes(&key))
    }

    /// The KEK's public identifier (hex).
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    fn aad(&self, kek_id: &[u8], user_id: i64, public_key: &[u8; 32]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + KEK_ID_LEN + 8 + 32);
        aad.extend_from_slice(AAD_LABEL);
        aad.extend_from_slice(kek_id);
        aad.extend_from_slice(&user_id.to_be_bytes());
        aad.extend_from_slice(public_key);
        aad
    }

    /// Seal `seed`, the key of the row `user_id` with `public_key`.
    pub fn seal(&self, user_id: i64, public_key: &[u8; 32], seed: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&crate::random32()[..NONCE_LEN]);
        let aad = self.aad(&self.id, user_id, public_key);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: seed,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals 32 bytes");
        let mut out = Vec::with_capacity(SEALED_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Open a sealed seed of the row `user_id` with `public_key`.
    pub fn open(
        &self,
        user_id: i64,
        public_key: &[u8; 32],
        sealed: &[u8],
    ) -> Result<[u8; 32], OpenError> {
        match sealed.first() {
            Some(&VERSION) => {}
            Some(&v) => return Err(OpenError::Version(v)),
            None => return Err(OpenError::Length(0)),
        }
        if sealed.len() != SEALED_LEN {
            return Err(OpenError::Length(sealed.len()));
        }
        let kek_id = &sealed[1..1 + KEK_ID_LEN];
        if kek_id != self.id {
            return Err(OpenError::OtherKek {
                sealed: hex::encode(kek_id),
                configured: self.id_hex(),
            });
        }
        let nonce = &sealed[1 + KEK_ID_LEN..1 + KEK_ID_LEN + NONCE_LEN];
        let ct = &sealed[1 + KEK_ID_LEN + NONCE_LEN..];
        let aad = self.aad(kek_id, user_id, public_key);
        let seed = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| OpenError::Tampered)?;
        seed.try_into().map_err(|_| OpenError::Tampered)
    }
}

/// Why a platform-held key did not sign.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the unsealed seed does not reproduce the registered public key")]
    KeyMismatch,
}

impl Kek {
    /// A new platform-held key for the row `user_id`: its public key and
    /// its sealed seed (the seed itself never leaves this module).
    pub fn generate(&self, user_id: i64) -> ([u8; 32], Vec<u8>) {
        let seed = crate::random32();
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        (public, self.seal(user_id, &public, &seed))
    }

    /// Sign `message` (Ed25519) with the platform-held key of the row
    /// `user_id`: the contract signature statement of
    /// [`crate::contracts::signature_statement`], exactly as a client-held
    /// key signs it. The unsealed seed must reproduce `public_key`.
    pub fn sign(
        &self,
        user_id: i64,
        public_key: &[u8; 32],
        sealed: &[u8],
        message: &[u8],
    ) -> Result<[u8; 64], SignError> {
        let key = SigningKey::from_bytes(&self.open(user_id, public_key, sealed)?);
        if key.verifying_key().to_bytes() != *public_key {
            return Err(SignError::KeyMismatch);
        }
        Ok(key.sign(message).to_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_for_their_row_key_and_kek() {
        let kek = Kek::from_bytes(&[7; 32]);
        let seed = [42u8; 32];
        let pk = [1u8; 32];
        let sealed = kek.seal(5, &pk, &seed);
        assert_eq!(sealed.len(), SEALED_LEN);
        assert_eq!(sealed[0], VERSION);
        assert!(
            !sealed.windows(32).any(|w| w == seed),
            "the seed is not stored in clear"
        );
        assert_eq!(kek.open(5, &pk, &sealed).unwrap(), seed);
        // Two seals of one seed differ (random nonce).
        assert_ne!(kek.seal(5, &pk, &seed), sealed);
        // Another row, another public key: no.
        assert_eq!(kek.open(6, &pk, &sealed), Err(OpenError::Tampered));
        assert_eq!(kek.open(5, &[2; 32], &sealed), Err(OpenError::Tampered));
        // A flipped bit anywhere after the header: no.
        for i in 1 + KEK_ID_LEN..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert_eq!(kek.open(5, &pk, &t), Err(OpenError::Tampered), "byte {i}");
        }
        // Another KEK is named as such.
        let other = Kek::from_bytes(&[8; 32]);
        assert!(matches!(
            other.open(5, &pk, &sealed),
            Err(OpenError::OtherKek { .. })
        ));
        // Unknown versions and truncations are refused.
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(kek.open(5, &pk, &v2), Err(OpenError::Version(2)));
        assert_eq!(kek.open(5, &pk, &sealed[..40]), Err(OpenError::Length(40)));
        assert_eq!(kek.open(5, &pk, &[]), Err(OpenError::Length(0)));
    }

    #[test]
    fn platform_keys_sign_only_for_their_row() {
        let kek = Kek::from_bytes(&[7; 32]);
        let (pk, sealed) = kek.generate(5);
        let sig = kek.sign(5, &pk, &sealed, b"statement").unwrap();
        use ed25519_dalek::Verifier as _;
        ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .unwrap()
            .verify(b"statement", &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
        assert_eq!(
            kek.sign(6, &pk, &sealed, b"statement"),
            Err(SignError::Open(OpenError::Tampered))
        );
    }

    #[test]
    fn the_kek_file_is_hex_or_raw() {
        let dir = std::env::temp_dir().join(format!("kek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hexf = dir.join("hex");
        std::fs::write(&hexf, format!("{}\n", "ab".repeat(32))).unwrap();
        let rawf = dir.join("raw");
        std::fs::write(&rawf, [0xab; 32]).unwrap();
        let a = Kek::load(&hexf).unwrap();
        let b = Kek::load(&rawf).unwrap();
        assert_eq!(a.id, b.id);
        for bad in [&b"short"[..], &[0u8; 32][..], "zz".repeat(32).as_bytes()] {
            let f = dir.join("bad");
            std::fs::write(&f, bad).unwrap();
            let e = Kek::load(&f).unwrap_err().to_string();
            assert!(e.contains("key_encryption_key_file"), "{e}");
        }
        assert!(Kek::load(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
