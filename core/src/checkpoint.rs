//! Blocks, the block log and its signed checkpoints (`docs/checkpoint-format.md`).
//!
//! - [`BlockHeader`]: what a sealed block commits to, in a canonical binary
//!   encoding tagged `"anchord.block"` + version (like `"anchord.entry"`).
//!   The **block hash is an RFC 6962 leaf hash**,
//!   `suite.leaf_hash(header.encode())` = `H(0x00 || header)`: one value is
//!   both the link the next header's `prev_hash` points at and the leaf of the
//!   block log, so the block log needs no second hash per block.
//! - The *block log* is the RFC 6962 tree whose leaves are the block hashes in
//!   height order; a [`Checkpoint`] of size `n` commits to blocks `0..n`.
//! - [`SignedNote`]: the C2SP signed-note envelope (c2sp.org/signed-note):
//!   the text, a blank line, then lines `— <name> <base64(key id || sig)>`.
//! - [`NoteSigner`] / [`NoteVerifier`]: Ed25519 note keys (algorithm byte
//!   0x01) and cosignature/v1 keys (0x04, c2sp.org/tlog-cosignature), with the
//!   vkey `<name>+<hex key id>+<base64(alg || pubkey)>` and the
//!   golang.org/x/mod/sumdb/note private key
//!   `PRIVATE+KEY+<name>+<hex key id>+<base64(alg || seed)>` text forms.
//!
//! No I/O: the caller passes times in, and reads key files itself.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::suite::{Digest32, HashSuite};

/// The ASCII domain tag every encoded block header starts with.
pub const BLOCK_MAGIC: &[u8; 13] = b"anchord.block";
/// The current (and only) block header encoding version.
pub const BLOCK_VERSION: u8 = 1;
/// Length of an encoded version-1 header: fixed, no variable fields.
pub const BLOCK_HEADER_LEN: usize = 13 + 1 + 1 + 8 + 8 + 8 + 8 + 32 + 32 + 8;
/// `prev_hash` of block 0.
pub const GENESIS_PREV_HASH: Digest32 = [0u8; 32];

/// Signature algorithm byte of an Ed25519 signed-note key (c2sp.org/signed-note).
pub const ALG_ED25519: u8 = 0x01;
/// Signature algorithm byte of an Ed25519 cosignature/v1 key
/// (c2sp.org/tlog-cosignature).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The em dash (U+2014) that starts every signature line.
pub const SIG_LINE_PREFIX: &str = "\u{2014} ";
/// A note may carry at most this many signatures (as Go's `note.Open`).
pub const MAX_SIGNATURES: usize = 100;
/// Longest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 1 << 20;

/// Why a block header, checkpoint, note, key or signature is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("block header: {0}")]
    BlockHeader(String),
    #[error("checkpoint body: {0}")]
    Checkpoint(String),
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("malformed key: {0}")]
    Key(String),
    #[error("signature by {name} (key id {key_id}) does not verify")]
    BadSignature { name: String, key_id: String },
    #[error("no signature by {name} (key id {key_id}) on the note")]
    MissingSignature { name: String, key_id: String },
}

fn bad_header(s: impl Into<String>) -> NoteError {
    NoteError::BlockHeader(s.into())
}

// ---------------------------------------------------------------------------
// Block header
// ---------------------------------------------------------------------------

/// Everything a sealed block commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// The suite of the block's Merkle tree (and of the block log).
    pub suite: HashSuite,
    /// Block height: 0 for the first block, then +1 each.
    pub height: u64,
    /// First ledger sequence number sealed, inclusive.
    pub first_seq: u64,
    /// Last ledger sequence number sealed, inclusive.
    pub last_seq: u64,
    /// `last_seq - first_seq + 1`, stated explicitly.
    pub leaf_count: u64,
    /// RFC 6962 root over the entries' leaf hashes, in sequence order.
    pub merkle_root: Digest32,
    /// The previous block's hash ([`GENESIS_PREV_HASH`] for block 0).
    pub prev_hash: Digest32,
    /// When the block was sealed, microseconds since the Unix epoch (UTC).
    pub sealed_at_us: i64,
}

impl BlockHeader {
    /// Check the cross-field rules (non-empty range, consistent count, genesis).
    pub fn validate(&self) -> Result<(), NoteError> {
        if self.last_seq < self.first_seq {
            return Err(bad_header(format!(
                "last_seq {} is before first_seq {}",
                self.last_seq, self.first_seq
            )));
        }
        if self.leaf_count != self.last_seq - self.first_seq + 1 {
            return Err(bad_header(format!(
                "leaf_count {} does not match the range {}..={}",
                self.leaf_count, self.first_seq, self.last_seq
            )));
        }
        if self.height == 0 && (self.first_seq != 0 || self.prev_hash != GENESIS_PREV_HASH) {
            return Err(bad_header(
                "block 0 must start at seq 0 with an all-zero prev_hash",
            ));
        }
        if self.sealed_at_us < 0 {
            return Err(bad_header("negative sealed time"));
        }
        Ok(())
    }

    /// The canonical encoding (version 1, [`BLOCK_HEADER_LEN`] bytes):
    /// tag, version, suite id, then big-endian height, first_seq, last_seq,
    /// leaf_count, the Merkle root, prev_hash and sealed_at_us.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BLOCK_HEADER_LEN);
        out.extend_from_slice(BLOCK_MAGIC);
        out.push(BLOCK_VERSION);
        out.push(self.suite.id());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(&self.last_seq.to_be_bytes());
        out.extend_from_slice(&self.leaf_count.to_be_bytes());
        out.extend_from_slice(&self.merkle_root);
        out.extend_from_slice(&self.prev_hash);
        out.extend_from_slice(&self.sealed_at_us.to_be_bytes());
        out
    }

    /// Parse a canonical encoding; rejects anything [`encode`](Self::encode)
    /// would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() != BLOCK_HEADER_LEN {
            return Err(bad_header(format!(
                "{} bytes, want {BLOCK_HEADER_LEN}",
                bytes.len()
            )));
        }
        if &bytes[..13] != BLOCK_MAGIC {
            return Err(bad_header("missing the \"anchord.block\" tag"));
        }
        if bytes[13] != BLOCK_VERSION {
            return Err(bad_header(format!("unsupported version {}", bytes[13])));
        }
        let suite = HashSuite::from_id(bytes[14])
            .ok_or_else(|| bad_header(format!("unknown hash suite id {}", bytes[14])))?;
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let d32_at = |i: usize| -> Digest32 { bytes[i..i + 32].try_into().expect("32 bytes") };
        let h = BlockHeader {
            suite,
            height: u64_at(15),
            first_seq: u64_at(23),
            last_seq: u64_at(31),
            leaf_count: u64_at(39),
            merkle_root: d32_at(47),
            prev_hash: d32_at(79),
            sealed_at_us: i64::from_be_bytes(bytes[111..119].try_into().expect("8 bytes")),
        };
        h.validate()?;
        Ok(h)
    }

    /// The block hash: the RFC 6962 leaf hash `H(0x00 || encode())`, which is
    /// also this block's leaf in the block log.
    pub fn hash(&self) -> Digest32 {
        self.suite.leaf_hash(&self.encode())
    }
}

/// Why a block's entries do not reproduce its header: the one check the
/// sealer's start-up, `anchord audit` and the verifier's prover all make.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockRootError {
    #[error(
        "block {height}: {got} entries stored in {first_seq}..={last_seq}, the block says {leaf_count}"
    )]
    LeafCount {
        height: u64,
        first_seq: u64,
        last_seq: u64,
        leaf_count: u64,
        got: u64,
    },
    #[error(
        "block {height}: stored merkle root {} but entries {first_seq}..={last_seq} recompute {}",
        hex::encode(.stored),
        hex::encode(.recomputed)
    )]
    Root {
        height: u64,
        first_seq: u64,
        last_seq: u64,
        stored: Digest32,
        recomputed: Digest32,
    },
}

impl BlockHeader {
    /// Does the block hold `got` entries, as its header says?
    pub fn check_leaf_count(&self, got: usize) -> Result<(), BlockRootError> {
        if got as u64 != self.leaf_count {
            return Err(BlockRootError::LeafCount {
                height: self.height,
                first_seq: self.first_seq,
                last_seq: self.last_seq,
                leaf_count: self.leaf_count,
                got: got as u64,
            });
        }
        Ok(())
    }

    /// Is `recomputed` (the RFC 6962 root of the block's leaf hashes) the
    /// header's Merkle root?
    pub fn check_root(&self, recomputed: Digest32) -> Result<(), BlockRootError> {
        if recomputed != self.merkle_root {
            return Err(BlockRootError::Root {
                height: self.height,
                first_seq: self.first_seq,
                last_seq: self.last_seq,
                stored: self.merkle_root,
                recomputed,
            });
        }
        Ok(())
    }

    /// Recompute the block's root from its leaf hashes (entries
    /// `first_seq..=last_seq` in order) under `suite` and check count and
    /// root against the header.
    pub fn check_leaves(
        &self,
        suite: HashSuite,
        leaves: &[Digest32],
    ) -> Result<(), BlockRootError> {
        self.check_leaf_count(leaves.len())?;
        self.check_root(crate::merkle::root(suite, leaves))
    }

    /// [`BlockHeader::check_leaves`] through aligned `chunk`-leaf chunk
    /// roots (`crate::tiles`; `chunk` a power of two), which it returns: the
    /// root over the chunk roots is the root over the leaves.
    pub fn check_leaves_chunked(
        &self,
        suite: HashSuite,
        leaves: &[Digest32],
        chunk: usize,
    ) -> Result<Vec<Digest32>, BlockRootError> {
        self.check_leaf_count(leaves.len())?;
        let roots = crate::tiles::chunk_roots(suite, leaves, chunk);
        self.check_root(crate::merkle::root(suite, &roots))?;
        Ok(roots)
    }
}

// ---------------------------------------------------------------------------
// Checkpoint body
// ---------------------------------------------------------------------------

/// A C2SP checkpoint body (c2sp.org/tlog-checkpoint): origin, tree size,
/// base64 root hash, optional extension lines, each ending in `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique identity, e.g. `anchord.local/ledger`.
    pub origin: String,
    /// Number of leaves (blocks) in the block log.
    pub size: u64,
    /// RFC 6962 root of the block log at `size`.
    pub root: Digest32,
    /// Extension lines (without their newlines); Anchord writes none.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn new(origin: impl Into<String>, size: u64, root: Digest32) -> Self {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The body text, exactly as signed.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parse a body: at least three lines, each `\n`-terminated; the size in
    /// decimal without leading zeros; the root standard base64 of 32 bytes.
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = |s: &str| NoteError::Checkpoint(s.to_owned());
        let Some(stripped) = body.strip_suffix('\n') else {
            return Err(bad("does not end with a newline"));
        };
        let mut lines = stripped.split('\n');
        let origin = lines.next().unwrap_or_default();
        validate_origin(origin)?;
        let size_line = lines.next().ok_or_else(|| bad("missing the size line"))?;
        let size =
            parse_decimal(size_line).ok_or_else(|| bad("size is not a canonical decimal"))?;
        let root_line = lines.next().ok_or_else(|| bad("missing the root line"))?;
        let root = decode_hash(root_line).ok_or_else(|| bad("root is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// An origin line: non-empty, printable, no leading or trailing space.
pub fn validate_origin(origin: &str) -> Result<(), NoteError> {
    if origin.is_empty()
        || origin.chars().any(char::is_control)
        || origin.trim() != origin
        || origin.len() > 256
    {
        return Err(NoteError::Checkpoint(format!(
            "origin {:?} must be 1 to 256 printable characters without leading or trailing space",
            origin.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// ASCII decimal with no leading zeros (`0` itself allowed).
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Standard base64 of exactly 32 bytes.
pub fn decode_hash(s: &str) -> Option<Digest32> {
    B64.decode(s).ok()?.try_into().ok()
}

/// Standard base64 of a hash.
pub fn encode_hash(h: &Digest32) -> String {
    B64.encode(h)
}

// ---------------------------------------------------------------------------
// Signed notes
// ---------------------------------------------------------------------------

/// One signature line of a note.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// First 4 bytes of the key hash.
    pub key_id: [u8; 4],
    /// What follows the key id: 64 bytes for Ed25519, 8 + 64 for cosignature/v1.
    pub payload: Vec<u8>,
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSignature")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl NoteSignature {
    /// `— <name> <base64(key id || payload)>\n`.
    pub fn line(&self) -> String {
        let mut blob = self.key_id.to_vec();
        blob.extend_from_slice(&self.payload);
        format!("{SIG_LINE_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }

    /// Parse one line (with or without its trailing newline).
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line.strip_prefix(SIG_LINE_PREFIX).ok_or_else(|| {
            NoteError::Malformed("signature line does not start with \"— \"".into())
        })?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| NoteError::Malformed("signature line has no key name".into()))?;
        validate_key_name(name).map_err(|_| NoteError::Malformed("bad key name".into()))?;
        let blob = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64".into()))?;
        if blob.len() < 5 {
            return Err(NoteError::Malformed("signature too short".into()));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: blob[..4].try_into().expect("4 bytes"),
            payload: blob[4..].to_vec(),
        })
    }

    /// The timestamp of a cosignature/v1 payload (8 bytes BE before the signature).
    pub fn cosignature_time(&self) -> Option<u64> {
        (self.payload.len() == 72)
            .then(|| u64::from_be_bytes(self.payload[..8].try_into().expect("8 bytes")))
    }
}

/// A signed note: text (ending in `\n`), a blank line, signature lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, including its final newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    pub fn new(text: impl Into<String>) -> Self {
        SignedNote {
            text: text.into(),
            signatures: Vec::new(),
        }
    }

    /// Parse a whole note. The text ends at the last blank line.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        let bad = |s: &str| NoteError::Malformed(s.to_owned());
        if note.len() > MAX_NOTE_LEN {
            return Err(bad("too long"));
        }
        if note.contains('\r') {
            return Err(bad("contains a carriage return"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line between text and signatures"))?;
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(bad("does not end with a newline"));
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            signatures.push(NoteSignature::parse_line(line)?);
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as text: `text`, `\n`, one line per signature.
    pub fn format(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.line());
        }
        s
    }

    /// Signatures whose name and key id match `v`.
    pub fn signatures_by<'a>(
        &'a self,
        v: &'a NoteVerifier,
    ) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        self.signatures
            .iter()
            .filter(move |s| s.name == v.name && s.key_id == v.key_id)
    }

    /// Verify the signature by `v`: `Ok(None)` for an Ed25519 note
    /// signature, `Ok(Some(t))` for a cosignature made at `t`. A missing
    /// signature and a signature that does not verify are both errors.
    pub fn verify_by(&self, v: &NoteVerifier) -> Result<Option<u64>, NoteError> {
        let mut found = false;
        for s in self.signatures_by(v) {
            found = true;
            if let Ok(t) = v.verify(&self.text, s) {
                return Ok(t);
            }
        }
        Err(if found {
            NoteError::BadSignature {
                name: v.name.clone(),
                key_id: hex::encode(v.key_id),
            }
        } else {
            NoteError::MissingSignature {
                name: v.name.clone(),
                key_id: hex::encode(v.key_id),
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// Key names: non-empty, no whitespace or control characters, no `+`.
pub fn validate_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name.len() > 256
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(NoteError::Key(format!(
            "key name {:?} must be non-empty with no spaces or '+'",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// Key id: the first 4 bytes of `SHA-256(name || 0x0A || alg || public key)`.
pub fn key_id(name: &str, alg: u8, public_key: &[u8; 32]) -> [u8; 4] {
    let h = HashSuite::Sha256.digest_parts(&[name.as_bytes(), b"\n", &[alg], public_key]);
    h[..4].try_into().expect("4 bytes")
}

fn check_alg(alg: u8) -> Result<(), NoteError> {
    match alg {
        ALG_ED25519 | ALG_COSIGNATURE_V1 => Ok(()),
        other => Err(NoteError::Key(format!(
            "unsupported signature algorithm byte 0x{other:02x} (want 0x01 Ed25519 or 0x04 cosignature/v1)"
        ))),
    }
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <t>\n<body>`.
pub fn cosignature_message(timestamp: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A public key that verifies note signatures or cosignatures.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    /// [`ALG_ED25519`] or [`ALG_COSIGNATURE_V1`].
    pub alg: u8,
    pub key_id: [u8; 4],
    pub key: VerifyingKey,
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.vkey())
    }
}

impl NoteVerifier {
    pub fn new(name: &str, alg: u8, key: VerifyingKey) -> Result<Self, NoteError> {
        validate_key_name(name)?;
        check_alg(alg)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            alg,
            key_id: key_id(name, alg, key.as_bytes()),
            key,
        })
    }

    /// Parse `<name>+<hex key id>+<base64(alg || pubkey)>`; the key id must
    /// match the one derived from the rest.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |s: &str| NoteError::Key(format!("verifier key: {s}"));
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("want <name>+<hex key id>+<base64 key>"));
        };
        validate_key_name(name)?;
        let blob = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        if blob.len() != 33 {
            return Err(bad("key is not 1 + 32 bytes"));
        }
        check_alg(blob[0])?;
        let pk: [u8; 32] = blob[1..].try_into().expect("32 bytes");
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| bad("not an Ed25519 public key"))?;
        let v = NoteVerifier::new(name, blob[0], key)?;
        if id_hex.len() != 8 || hex::encode(v.key_id) != id_hex {
            return Err(bad("key id does not match the key"));
        }
        Ok(v)
    }

    /// The vkey text form.
    pub fn vkey(&self) -> String {
        let mut blob = vec![self.alg];
        blob.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(blob)
        )
    }

    /// Verify one signature line over `text` (a note text / checkpoint
    /// body). Returns the cosignature time for cosignature keys.
    pub fn verify(&self, text: &str, sig: &NoteSignature) -> Result<Option<u64>, NoteError> {
        let bad = || NoteError::BadSignature {
            name: self.name.clone(),
            key_id: hex::encode(self.key_id),
        };
        if sig.name != self.name || sig.key_id != self.key_id {
            return Err(bad());
        }
        let (msg, raw, time) = match self.alg {
            ALG_ED25519 => (text.to_owned(), sig.payload.as_slice(), None),
            _ => {
                let t = sig.cosignature_time().ok_or_else(bad)?;
                (cosignature_message(t, text), &sig.payload[8..], Some(t))
            }
        };
        let raw: [u8; 64] = raw.try_into().map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_bytes(&raw);
        self.key
            .verify_strict(msg.as_bytes(), &signature)
            .map_err(|_| bad())?;
        Ok(time)
    }
}

/// A private key that signs notes (0x01) or cosignatures (0x04).
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    alg: u8,
    key_id: [u8; 4],
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the seed.
        f.debug_struct("NoteSigner")
            .field("vkey", &self.verifier().vkey())
            .finish()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, alg: u8, seed: &[u8; 32]) -> Result<Self, NoteError> {
        validate_key_name(name)?;
        check_alg(alg)?;
        let key = SigningKey::from_bytes(seed);
        Ok(NoteSigner {
            name: name.to_owned(),
            alg,
            key_id: key_id(name, alg, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// Parse `PRIVATE+KEY+<name>+<hex key id>+<base64(alg || seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |s: &str| NoteError::Key(format!("private key: {s}"));
        let text = text.trim_end_matches('\n');
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("does not start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("want PRIVATE+KEY+<name>+<hex key id>+<base64 key>"));
        };
        let blob = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        if blob.len() != 33 {
            return Err(bad("key is not 1 + 32 bytes"));
        }
        let seed: [u8; 32] = blob[1..].try_into().expect("32 bytes");
        let s = NoteSigner::from_seed(name, blob[0], &seed)?;
        if id_hex.len() != 8 || hex::encode(s.key_id) != id_hex {
            return Err(bad("key id does not match the key"));
        }
        Ok(s)
    }

    /// The private key text form (keep it secret).
    pub fn private_key_text(&self) -> String {
        let mut blob = vec![self.alg];
        blob.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(blob)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn alg(&self) -> u8 {
        self.alg
    }
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            alg: self.alg,
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// An Ed25519 note signature over `text`. Only for 0x01 keys.
    pub fn sign(&self, text: &str) -> Result<NoteSignature, NoteError> {
        if self.alg != ALG_ED25519 {
            return Err(NoteError::Key(
                "a cosignature key signs only cosignatures".into(),
            ));
        }
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            payload: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        })
    }

    /// A cosignature/v1 over a checkpoint body at `timestamp` (Unix
    /// seconds). Only for 0x04 keys.
    pub fn cosign(&self, body: &str, timestamp: u64) -> Result<NoteSignature, NoteError> {
        if self.alg != ALG_COSIGNATURE_V1 {
            return Err(NoteError::Key("a note key does not cosign".into()));
        }
        let sig = self
            .key
            .sign(cosignature_message(timestamp, body).as_bytes());
        let mut payload = timestamp.to_be_bytes().to_vec();
        payload.extend_from_slice(&sig.to_bytes());
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            payload,
        })
    }
}

// ---------------------------------------------------------------------------
// Finality
// ---------------------------------------------------------------------------

/// What verifying a checkpoint note against the sealer and witnesses found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointVerdict {
    pub checkpoint: Checkpoint,
    /// Names of the witnesses whose cosignatures verified.
    pub cosigned_by: Vec<String>,
    /// True when the quorum is reached (always true with no witnesses).
    pub is_final: bool,
}

/// Verify a checkpoint note: the sealer's signature must verify; witness
/// cosignatures are counted (a present but invalid one is an error, as the
/// note is then malformed); `quorum` of them make it final.
pub fn verify_checkpoint(
    note: &SignedNote,
    sealer: &NoteVerifier,
    witnesses: &[NoteVerifier],
    quorum: usize,
) -> Result<CheckpointVerdict, NoteError> {
    let checkpoint = Checkpoint::parse(&note.text)?;
    note.verify_by(sealer)?;
    let mut cosigned_by = Vec::new();
    for w in witnesses {
        match note.verify_by(w) {
            Ok(_) => cosigned_by.push(w.name.clone()),
            Err(NoteError::MissingSignature { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let is_final = witnesses.is_empty() || cosigned_by.len() >= quorum;
    Ok(CheckpointVerdict {
        checkpoint,
        cosigned_by,
        is_final,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note's documented example: an independent
    // implementation of the note format, key ids and key encodings.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn fixed_signer() -> NoteSigner {
        NoteSigner::from_seed("anchord.local/ledger", ALG_ED25519, &[7u8; 32]).unwrap()
    }

    fn example_header() -> BlockHeader {
        BlockHeader {
            suite: HashSuite::Sha256,
            height: 3,
            first_seq: 300,
            last_seq: 399,
            leaf_count: 100,
            merkle_root: HashSuite::Sha256.digest(b"root"),
            prev_hash: HashSuite::Sha256.digest(b"prev"),
            sealed_at_us: 1_764_000_000_000_000,
        }
    }

    fn leaves(n: u64) -> Vec<Digest32> {
        (0..n)
            .map(|i| HashSuite::Sha256.leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    fn header_over(leaves: &[Digest32]) -> BlockHeader {
        BlockHeader {
            leaf_count: leaves.len() as u64,
            last_seq: 300 + leaves.len() as u64 - 1,
            merkle_root: crate::merkle::root(HashSuite::Sha256, leaves),
            ..example_header()
        }
    }

    #[test]
    fn block_root_check_accepts_the_blocks_own_leaves() {
        for n in [1u64, 2, 3, 255, 256, 257, 600] {
            let l = leaves(n);
            let h = header_over(&l);
            assert_eq!(h.check_leaves(HashSuite::Sha256, &l), Ok(()));
            let roots = h.check_leaves_chunked(HashSuite::Sha256, &l, 256).unwrap();
            assert_eq!(roots, crate::tiles::chunk_roots(HashSuite::Sha256, &l, 256));
        }
    }

    #[test]
    fn block_root_check_known_answer_and_error_text() {
        // RFC 6962 root of the two leaves H(0x00 || 0u64) and H(0x00 || 1u64),
        // computed by hand: H(0x01 || l0 || l1).
        let l = leaves(2);
        let mut node = vec![0x01];
        node.extend_from_slice(&l[0]);
        node.extend_from_slice(&l[1]);
        let want = HashSuite::Sha256.digest(&node);
        let h = BlockHeader {
            merkle_root: want,
            ..header_over(&l)
        };
        assert_eq!(h.check_leaves(HashSuite::Sha256, &l), Ok(()));
        let bad = BlockHeader {
            merkle_root: [0; 32],
            ..h.clone()
        };
        let e = bad.check_leaves(HashSuite::Sha256, &l).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "block 3: stored merkle root {} but entries 300..=301 recompute {}",
                hex::encode([0u8; 32]),
                hex::encode(want)
            )
        );
        let e = h.check_leaves(HashSuite::Sha256, &l[..1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "block 3: 1 entries stored in 300..=301, the block says 2"
        );
    }

    #[test]
    fn block_root_check_refuses_mutated_leaves() {
        let l = leaves(300);
        let h = header_over(&l);
        for i in [0usize, 1, 255, 256, 299] {
            let mut m = l.clone();
            m[i][5] ^= 0x20;
            assert!(matches!(
                h.check_leaves(HashSuite::Sha256, &m),
                Err(BlockRootError::Root { .. })
            ));
            assert!(matches!(
                h.check_leaves_chunked(HashSuite::Sha256, &m, 256),
                Err(BlockRootError::Root { .. })
            ));
        }
        // Reordered, dropped, added, or under the other suite.
        let mut swapped = l.clone();
        swapped.swap(10, 11);
        assert!(h.check_leaves(HashSuite::Sha256, &swapped).is_err());
        assert!(matches!(
            h.check_leaves(HashSuite::Sha256, &l[..299]),
            Err(BlockRootError::LeafCount { got: 299, .. })
        ));
        let mut more = l.clone();
        more.push(l[0]);
        assert!(matches!(
            h.check_leaves_chunked(HashSuite::Sha256, &more, 256),
            Err(BlockRootError::LeafCount { got: 301, .. })
        ));
        assert!(h.check_leaves(HashSuite::Sm3, &l).is_err());
    }

    #[test]
    fn go_reference_note_key_ids_and_signature() {
        let s = NoteSigner::parse(GO_SKEY).unwrap();
        assert_eq!(s.private_key_text(), GO_SKEY);
        assert_eq!(hex::encode(s.key_id()), "c74f20a3");
        assert_eq!(s.verifier().vkey(), GO_VKEY);
        let v = NoteVerifier::parse(GO_VKEY).unwrap();
        assert_eq!(v, s.verifier());
        let mut note = SignedNote::new(GO_TEXT);
        note.signatures.push(s.sign(GO_TEXT).unwrap());
        let text = note.format();
        assert_eq!(text, format!("{GO_TEXT}\n{GO_SIG}"));
        let parsed = SignedNote::parse(&text).unwrap();
        assert_eq!(parsed.verify_by(&v), Ok(None));
    }

    #[test]
    fn key_id_is_sha256_of_name_newline_alg_pubkey() {
        let s = fixed_signer();
        let pk = s.verifier().key;
        let mut input = b"anchord.local/ledger\n".to_vec();
        input.push(0x01);
        input.extend_from_slice(pk.as_bytes());
        assert_eq!(
            s.key_id()[..],
            HashSuite::Sha256.digest(&input)[..4],
            "key id = SHA-256(name || 0x0A || 0x01 || pubkey)[:4]"
        );
        let w =
            NoteSigner::from_seed("witness.example/w1", ALG_COSIGNATURE_V1, &[7u8; 32]).unwrap();
        assert_ne!(
            w.key_id(),
            key_id("witness.example/w1", ALG_ED25519, pk.as_bytes())
        );
        assert_eq!(
            w.key_id(),
            key_id("witness.example/w1", 0x04, pk.as_bytes())
        );
    }

    #[test]
    fn checkpoint_signed_with_a_fixed_seed_known_answer() {
        let cp = Checkpoint::new("anchord.local/ledger", 5, HashSuite::Sha256.digest(b"log"));
        let body = cp.body();
        assert_eq!(
            body,
            "anchord.local/ledger\n5\ng2/xhOe0Gx4Ty1/Yn6HemNu6uZ6dKRiRP/Q7hqXHwhM=\n"
        );
        let s = fixed_signer();
        let mut note = SignedNote::new(body.clone());
        note.signatures.push(s.sign(&body).unwrap());
        let text = note.format();
        // Ed25519 is deterministic (RFC 8032): the whole note is fixed.
        assert_eq!(
            text,
            format!("{body}\n\u{2014} anchord.local/ledger {}\n", KAT_SIG_B64)
        );
        let v = s.verifier();
        let verdict = verify_checkpoint(&SignedNote::parse(&text).unwrap(), &v, &[], 0).unwrap();
        assert_eq!(verdict.checkpoint, cp);
        assert!(verdict.is_final);
    }

    /// Computed independently with Python `cryptography` (Ed25519, seed 0x07 * 32).
    const KAT_SIG_B64: &str = "XmPqJ4q38Mh84H7O3IVekyyg/dEmII3BQQV76Q/7JiqBcQR+vgebdqGDGw5qjvFmrptSPqOCeAzbniQM3jZBU2ZXKgk=";

    #[test]
    fn mutated_notes_do_not_verify() {
        let s = fixed_signer();
        let v = s.verifier();
        let cp = Checkpoint::new("anchord.local/ledger", 5, [9u8; 32]);
        let mut note = SignedNote::new(cp.body());
        note.signatures.push(s.sign(&cp.body()).unwrap());
        let good = note.format();
        assert!(SignedNote::parse(&good).unwrap().verify_by(&v).is_ok());
        // Flip each byte of the text: parse or verification must fail.
        let bytes = good.as_bytes();
        let text_len = note.text.len();
        for i in 0..text_len {
            let mut b = bytes.to_vec();
            b[i] ^= 0x01;
            let Ok(s) = String::from_utf8(b) else {
                continue;
            };
            if let Ok(n) = SignedNote::parse(&s) {
                assert!(n.verify_by(&v).is_err(), "byte {i} flipped still verifies");
            }
        }
        // A wrong key, a wrong name, a truncated signature.
        let other = NoteSigner::from_seed("anchord.local/ledger", ALG_ED25519, &[8u8; 32]).unwrap();
        let n = SignedNote::parse(&good).unwrap();
        assert!(matches!(
            n.verify_by(&other.verifier()),
            Err(NoteError::MissingSignature { .. })
        ));
        let mut forged = n.clone();
        forged.signatures[0].payload[10] ^= 1;
        assert!(matches!(
            forged.verify_by(&v),
            Err(NoteError::BadSignature { .. })
        ));
        let mut short = n.clone();
        short.signatures[0].payload.truncate(63);
        assert!(short.verify_by(&v).is_err());
        for bad in [
            "",
            "x\n",
            "anchord\n1\nAAAA\n\n",
            &good.replace('\u{2014}', "-"),
            good.trim_end(),
        ] {
            let r = SignedNote::parse(bad);
            assert!(
                r.is_err() || r.unwrap().verify_by(&v).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn checkpoint_body_rules() {
        let root = B64.encode([1u8; 32]);
        assert!(Checkpoint::parse(&format!("o\n0\n{root}\n")).is_ok());
        let cp = Checkpoint::parse(&format!("o\n12\n{root}\next one\n")).unwrap();
        assert_eq!(cp.extensions, vec!["ext one".to_string()]);
        assert_eq!(Checkpoint::parse(&cp.body()).unwrap(), cp);
        for bad in [
            format!("o\n012\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            "o\n1\nAAAA\n".to_string(),
            format!("o\n1\n{root}\n\n"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cosignature_v1_signs_time_and_body() {
        let w =
            NoteSigner::from_seed("witness.example/w1", ALG_COSIGNATURE_V1, &[3u8; 32]).unwrap();
        let v = NoteVerifier::parse(&w.verifier().vkey()).unwrap();
        assert_eq!(v.alg, ALG_COSIGNATURE_V1);
        let body = Checkpoint::new("anchord.local/ledger", 7, [5u8; 32]).body();
        let sig = w.cosign(&body, 1_790_000_000).unwrap();
        assert_eq!(sig.payload.len(), 72);
        assert_eq!(sig.cosignature_time(), Some(1_790_000_000));
        assert_eq!(v.verify(&body, &sig), Ok(Some(1_790_000_000)));
        // The signature covers the exact message format.
        let raw: [u8; 64] = sig.payload[8..].try_into().unwrap();
        let msg = format!("cosignature/v1\ntime 1790000000\n{body}");
        assert!(
            v.key
                .verify_strict(msg.as_bytes(), &ed25519_dalek::Signature::from_bytes(&raw))
                .is_ok()
        );
        // Changing the timestamp or the body breaks it.
        let mut t = sig.clone();
        t.payload[7] ^= 1;
        assert!(v.verify(&body, &t).is_err());
        let other = Checkpoint::new("anchord.local/ledger", 8, [5u8; 32]).body();
        assert!(v.verify(&other, &sig).is_err());
        // A cosignature key refuses to make plain note signatures and vice versa.
        assert!(w.sign(&body).is_err());
        assert!(fixed_signer().cosign(&body, 1).is_err());
    }

    #[test]
    fn cosignature_known_answer_from_an_independent_implementation() {
        // Computed with Python `cryptography`: seed 0x03 * 32, algorithm
        // byte 0x04, message "cosignature/v1\ntime 1790000000\n" + body.
        let w =
            NoteSigner::from_seed("witness.example/w1", ALG_COSIGNATURE_V1, &[3u8; 32]).unwrap();
        assert_eq!(
            w.verifier().vkey(),
            "witness.example/w1+d9ed62c5+BO1JKMYo0cLG6ukDOJBZlWEpWSc6XGP5NjbBRhSshzfR"
        );
        let body =
            Checkpoint::new("anchord.local/ledger", 5, HashSuite::Sha256.digest(b"log")).body();
        assert_eq!(
            w.cosign(&body, 1_790_000_000).unwrap().line(),
            "\u{2014} witness.example/w1 2e1ixQAAAABqsTuALT/zlUulo/FOEs7Wg+e59ZpOixBkx+9tGQkSfSZd3M/ni953TdMgWln+MnAe686cZKIM4szEPcJlWEdJMBXRCA==\n"
        );
    }

    #[test]
    fn quorum_decides_finality() {
        let sealer = fixed_signer();
        let ws: Vec<NoteSigner> = (0..3)
            .map(|i| {
                NoteSigner::from_seed(&format!("w{i}"), ALG_COSIGNATURE_V1, &[i as u8 + 20; 32])
                    .unwrap()
            })
            .collect();
        let vs: Vec<NoteVerifier> = ws.iter().map(NoteSigner::verifier).collect();
        let body = Checkpoint::new("anchord.local/ledger", 2, [1u8; 32]).body();
        let mut note = SignedNote::new(body.clone());
        note.signatures.push(sealer.sign(&body).unwrap());
        note.signatures.push(ws[0].cosign(&body, 10).unwrap());
        let v = verify_checkpoint(&note, &sealer.verifier(), &vs, 2).unwrap();
        assert_eq!((v.cosigned_by.len(), v.is_final), (1, false));
        note.signatures.push(ws[2].cosign(&body, 11).unwrap());
        let v = verify_checkpoint(&note, &sealer.verifier(), &vs, 2).unwrap();
        assert_eq!(v.cosigned_by, vec!["w0".to_string(), "w2".to_string()]);
        assert!(v.is_final);
        // A bad cosignature from a known witness makes the note malformed.
        note.signatures[1].payload[20] ^= 1;
        assert!(verify_checkpoint(&note, &sealer.verifier(), &vs, 2).is_err());
    }

    #[test]
    fn key_text_forms_reject_mangling() {
        let s = fixed_signer();
        let sk = s.private_key_text();
        let vk = s.verifier().vkey();
        assert_eq!(NoteSigner::parse(&sk).unwrap().verifier(), s.verifier());
        assert_eq!(NoteVerifier::parse(&vk).unwrap(), s.verifier());
        for i in 0..vk.len() {
            let mut b = vk.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            if let Ok(m) = String::from_utf8(b)
                && m != vk
            {
                assert!(NoteVerifier::parse(&m).is_err(), "{m}");
            }
        }
        assert!(NoteVerifier::parse(&vk[..vk.len() - 1]).is_err());
        assert!(NoteSigner::parse(&sk.replacen("PRIVATE", "PUBLIC", 1)).is_err());
        assert!(NoteSigner::from_seed("bad name", ALG_ED25519, &[0; 32]).is_err());
        assert!(NoteSigner::from_seed("a+b", ALG_ED25519, &[0; 32]).is_err());
        assert!(NoteSigner::from_seed("ok", 0x02, &[0; 32]).is_err());
        assert!(!format!("{s:?}").contains(&sk[sk.len() - 20..]));
    }

    #[test]
    fn block_header_known_answer_and_round_trip() {
        let h = example_header();
        let enc = h.encode();
        assert_eq!(enc.len(), BLOCK_HEADER_LEN);
        assert_eq!(&enc[..14], b"anchord.block\x01");
        assert_eq!(BlockHeader::decode(&enc).unwrap(), h);
        assert_eq!(h.hash(), HashSuite::Sha256.leaf_hash(&enc));
        assert_eq!(hex::encode(h.hash()), KAT_BLOCK_HASH);
    }

    /// SHA-256(0x00 || header), computed independently with Python hashlib.
    const KAT_BLOCK_HASH: &str = "4ad259d37833656d5575c2c82b2fe855afa3e958a90f85be9b5817520504e33c";

    #[test]
    fn block_header_rejects_mutations() {
        let enc = example_header().encode();
        assert!(BlockHeader::decode(&enc[..enc.len() - 1]).is_err());
        let mut longer = enc.clone();
        longer.push(0);
        assert!(BlockHeader::decode(&longer).is_err());
        for (i, what) in [(0, "tag"), (13, "version"), (14, "suite")] {
            let mut b = enc.clone();
            b[i] = 0x7f;
            assert!(BlockHeader::decode(&b).is_err(), "{what}");
        }
        let mut h = example_header();
        h.leaf_count = 99;
        assert!(h.validate().is_err());
        let mut h = example_header();
        h.last_seq = 299;
        assert!(h.validate().is_err());
        let mut h = example_header();
        h.height = 0;
        assert!(
            h.validate().is_err(),
            "genesis must start at 0 with zero prev"
        );
        // Every field is covered by the hash.
        let base = example_header().hash();
        let mut muts = vec![example_header(); 7];
        muts[0].height += 1;
        muts[1].first_seq += 1;
        muts[1].leaf_count -= 1;
        muts[2].merkle_root[0] ^= 1;
        muts[3].prev_hash[31] ^= 1;
        muts[4].sealed_at_us += 1;
        muts[5].suite = HashSuite::Sm3;
        muts[6].last_seq += 1;
        muts[6].leaf_count += 1;
        for m in muts {
            assert_ne!(m.hash(), base, "{m:?}");
        }
    }
}
