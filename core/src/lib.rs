//! Anchord's core: the data model and the cryptography, with no I/O.
//!
//! Architecture invariant: this crate is the only place that defines how
//! anything is hashed, encoded for hashing, or proven. It does no I/O (no
//! files, no network, no clock): callers pass in bytes and times.
//!
//! - [`suite`]: the hash suites (SHA-256, SM3) and RFC 6962 domain separation.
//! - [`entry`]: the evidence entry and its canonical, versioned encoding.
//! - [`merkle`]: RFC 6962 / RFC 9162 trees, inclusion and consistency proofs.
//! - [`checkpoint`]: block headers, the block log's C2SP checkpoints, signed
//!   notes, Ed25519 note keys and cosignatures.
//! - [`anchor`]: the anchor payload an EVM transaction carries
//!   (`ANCHORD1 ‖ size ‖ root ‖ origin`).
//! - [`time`]: µs/ms since the Unix epoch, from a time the caller read.
//! - [`vectors`]: the conformance kit (transparency-dev/merkle vector layout).
//! - [`witness`]: the witness protocol's `add-checkpoint` request body.

/// Reads a unit enum from a JSON string and nothing else. serde's derived
/// enum reader also accepts the externally tagged map form (`{"sha256":
/// null}`), which the bundle format (`docs/proof-format.md`, strict parsing)
/// does not allow: a second verifier refused such a bundle that this one
/// answered VALID for. Every unit enum of a format others read uses this.
macro_rules! deserialize_from_string_only {
    ($ty:ty { $($name:literal => $variant:expr),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                match s.as_str() {
                    $($name => Ok($variant),)+
                    other => Err(serde::de::Error::unknown_variant(other, &[$($name),+])),
                }
            }
        }
    };
}

pub mod anchor;
pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod filehash;
pub mod filter;
pub mod merkle;
pub mod ots;
pub mod suite;
pub mod tiles;
pub mod time;
pub mod vectors;
pub mod witness;

pub use entry::{Entry, EntryError, EntryRef, EvidenceAlg};
pub use suite::{Digest32, HashSuite};
