//! `.ots` export of a bundle: operations from [`anchord_core::ots`], one
//! `ANCHORD1` attestation per receipt of the bundle's own checkpoint, or an
//! OTS pending attestation pointing at this API while it is not anchored.

use anchord_core::bundle::Bundle;
use anchord_core::ots::{ANCHOR_ATTESTATION_TAG, Attestation, OtsError, encode};

/// The `.ots` file of a bundle. `proof_url` is where the upgraded bundle
/// will be (used for the pending attestation).
pub fn export(b: &Bundle, proof_url: &str) -> Result<Vec<u8>, OtsError> {
    let mut atts: Vec<Attestation> = b
        .anchor
        .receipts
        .iter()
        .filter(|r| r.checkpoint_size == b.checkpoint.size)
        .map(|r| Attestation {
            tag: ANCHOR_ATTESTATION_TAG,
            payload: serde_json::json!({
                "target": r.target,
                "chain_kind": r.chain_kind,
                "chain_id": r.chain_id,
                "tx_id": r.tx_id,
                "block_number": r.block_number,
                "block_hash": r.block_hash,
                "checkpoint_origin": b.checkpoint.origin,
                "checkpoint_size": b.checkpoint.size,
                "checkpoint_root": hex::encode(b.checkpoint.root),
            })
            .to_string()
            .into_bytes(),
        })
        .collect();
    if atts.is_empty() {
        atts.push(Attestation::pending(proof_url));
    }
    encode(b, &atts)
}
