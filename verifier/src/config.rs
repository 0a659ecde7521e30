//! `[verifier]` configuration.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::VerifierError;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// Where the public API listens.
    pub listen: SocketAddr,
    /// Public base URL of this API, for verification links (certificates).
    pub public_url: String,
    /// Largest request body (uploaded file) accepted, bytes.
    pub max_body_bytes: usize,
    /// Requests per second allowed per client IP (sustained).
    pub rate_per_second: u32,
    /// Burst allowance per client IP.
    pub rate_burst: u32,
    /// How often the relay anchors, seconds: a pending bundle's expected
    /// anchor time is its checkpoint's creation time plus this.
    pub anchor_interval_s: u64,
    /// Leaves per cached chunk root (a power of two): a proof reads one
    /// chunk of leaf hashes.
    pub chunk_leaves: u64,
    /// Serialized bundles expected in memory (sizes the cache's table;
    /// 0 turns the bundle cache off).
    pub bundle_cache_entries: usize,
    /// The bundle cache's bound, bytes (each bundle weighs its JSON twice,
    /// for the parsed form kept beside it, plus its key): least recently
    /// and least often used bundles are evicted beyond it.
    pub bundle_cache_bytes: u64,
    /// The longest a cached anchored bundle is served, seconds: a backstop
    /// (a new checkpoint, anchor or lost anchor invalidates cached bundles
    /// within `anchor_view_ttl_ms` anyway).
    pub anchored_cache_ttl_s: u64,
    /// The same for a bundle still waiting for its anchor.
    pub pending_cache_ttl_s: u64,
    /// How often the latest checkpoint and the anchors are looked up,
    /// milliseconds: a new checkpoint, cosignature, timestamp, anchor or
    /// lost anchor shows up in served bundles within this time (0: looked
    /// up on every request).
    pub anchor_view_ttl_ms: u64,
    /// Most proof lookups gathered into one statement: cold requests that
    /// arrive while earlier statements run wait for the next one, which
    /// answers them together (a lone request is sent at once).
    pub proof_batch_max: usize,
    /// Proof statements running at once (each on its own connection);
    /// requests beyond them gather into the next statement. Each running
    /// statement keeps one PostgreSQL core busy: about the cores the
    /// database can give cold proofs, not more (more statements make
    /// smaller batches that contend for the same cores; docs/http-api.md,
    /// "Cold lookups share statements", has the measurements).
    pub proof_batches_in_flight: usize,
    /// CJK font (TTF/OTF/TTC) for certificates, subsetted into each PDF.
    pub cjk_font: std::path::PathBuf,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
            public_url: "http://127.0.0.1:7480".into(),
            max_body_bytes: 64 << 20,
            rate_per_second: 2000,
            rate_burst: 4000,
            anchor_interval_s: 600,
            chunk_leaves: 256,
            bundle_cache_entries: 100_000,
            bundle_cache_bytes: 256 << 20,
            anchored_cache_ttl_s: 60,
            pending_cache_ttl_s: 2,
            anchor_view_ttl_ms: 1000,
            proof_batch_max: 64,
            proof_batches_in_flight: 2,
            cjk_font: crate::certificate::DEFAULT_FONT.into(),
        }
    }
}

impl VerifierConfig {
    pub fn validate(&self) -> Result<(), VerifierError> {
        let bad = |s: &str| Err(VerifierError::Config(s.into()));
        if !self.chunk_leaves.is_power_of_two() || self.chunk_leaves > 1 << 16 {
            return bad("verifier.chunk_leaves must be a power of two up to 65536");
        }
        if self.rate_per_second == 0 || self.rate_burst == 0 {
            return bad("verifier.rate_per_second and verifier.rate_burst must be positive");
        }
        if !(1..=1024).contains(&self.proof_batch_max) {
            return bad("verifier.proof_batch_max must be 1 to 1024");
        }
        if !(1..=256).contains(&self.proof_batches_in_flight) {
            return bad("verifier.proof_batches_in_flight must be 1 to 256");
        }
        if self.max_body_bytes < 1024 {
            return bad("verifier.max_body_bytes must be at least 1024");
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return bad("verifier.public_url must be an http(s) URL");
        }
        Ok(())
    }
}
