//! The witness protocol's `add-checkpoint` request body
//! (c2sp.org/tlog-witness, `docs/witness-protocol.md`): the line
//! `old <size>`, the consistency proof from that size, one base64 hash a
//! line, a blank line, then the signed checkpoint note. The batcher's
//! cosigner writes it and the witness service parses it: this module is its
//! one definition.

use crate::checkpoint::{SignedNote, decode_hash, encode_hash, parse_decimal};
use crate::suite::Digest32;

/// Most consistency proof lines accepted (a 2^63-leaf tree needs fewer).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request.
#[derive(Clone, Debug)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned, per the sender.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the new checkpoint's size.
    pub proof: Vec<Digest32>,
    pub note: SignedNote,
}

/// Why a body is not an `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddCheckpointError {
    #[error("no old size line")]
    NoOldLine,
    #[error("bad old size line")]
    BadOldLine,
    #[error("no blank line before the checkpoint")]
    NoBlankLine,
    #[error("bad consistency proof line")]
    BadProofLine,
    #[error("too many proof lines")]
    TooManyProofLines,
    #[error("{0}")]
    Note(String),
}

/// The request body for `note` (the signed checkpoint's text form), sent by
/// a log whose witness last cosigned size `old`.
pub fn add_checkpoint_body(old: u64, proof: &[Digest32], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for p in proof {
        body.push_str(&encode_hash(p));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// Parse the request body: `old <n>\n`, proof lines, `\n`, signed note.
pub fn parse_add_checkpoint(body: &str) -> Result<AddCheckpoint, AddCheckpointError> {
    let (first, rest) = body.split_once('\n').ok_or(AddCheckpointError::NoOldLine)?;
    let old_size = first
        .strip_prefix("old ")
        .and_then(parse_decimal)
        .ok_or(AddCheckpointError::BadOldLine)?;
    let (proof_part, note) = if let Some(note) = rest.strip_prefix('\n') {
        ("", note)
    } else {
        rest.split_once("\n\n")
            .ok_or(AddCheckpointError::NoBlankLine)?
    };
    let mut proof = Vec::new();
    if !proof_part.is_empty() {
        for line in proof_part.split('\n') {
            proof.push(decode_hash(line).ok_or(AddCheckpointError::BadProofLine)?);
            if proof.len() > MAX_PROOF_LINES {
                return Err(AddCheckpointError::TooManyProofLines);
            }
        }
    }
    let note = SignedNote::parse(note).map_err(|e| AddCheckpointError::Note(e.to_string()))?;
    Ok(AddCheckpoint {
        old_size,
        proof,
        note,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const NOTE: &str =
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} k AAAAAAE=\n";

    #[test]
    fn known_answer() {
        let h = [7u8; 32];
        let body = add_checkpoint_body(3, &[h, h], NOTE);
        assert_eq!(
            body,
            format!(
                "old 3\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n{NOTE}"
            )
        );
        let r = parse_add_checkpoint(&body).unwrap();
        assert_eq!(
            (r.old_size, r.proof, r.note.format()),
            (3, vec![h, h], NOTE.to_owned())
        );
        let r = parse_add_checkpoint(&format!("old 0\n\n{NOTE}")).unwrap();
        assert_eq!((r.old_size, r.proof.len()), (0, 0));
    }

    #[test]
    fn mutated_bodies_are_refused() {
        let h = encode_hash(&[7; 32]);
        for (bad, want) in [
            (format!("old 03\n\n{NOTE}"), AddCheckpointError::BadOldLine),
            (format!("new 3\n\n{NOTE}"), AddCheckpointError::BadOldLine),
            (format!("old -1\n\n{NOTE}"), AddCheckpointError::BadOldLine),
            (
                format!("old 3\nnot-base64\n\n{NOTE}"),
                AddCheckpointError::BadProofLine,
            ),
            (
                format!("old 3\n{h}\n{NOTE}"),
                AddCheckpointError::BadProofLine,
            ),
            ("old 3\n".to_string(), AddCheckpointError::NoBlankLine),
            ("old 3".to_string(), AddCheckpointError::NoOldLine),
            (
                format!("old 3\n{}\n{NOTE}", vec![h.as_str(); 64].join("\n") + "\n"),
                AddCheckpointError::TooManyProofLines,
            ),
        ] {
            assert_eq!(parse_add_checkpoint(&bad).unwrap_err(), want, "{bad:?}");
        }
        assert!(matches!(
            parse_add_checkpoint("old 3\n\nnot a note"),
            Err(AddCheckpointError::Note(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(old in any::<u64>(), proof in prop::collection::vec(any::<[u8; 32]>(), 0..=MAX_PROOF_LINES)) {
            let body = add_checkpoint_body(old, &proof, NOTE);
            let r = parse_add_checkpoint(&body).unwrap();
            prop_assert_eq!(r.old_size, old);
            prop_assert_eq!(r.proof, proof);
            prop_assert_eq!(r.note.format(), NOTE);
        }
    }
}
