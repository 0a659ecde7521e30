//! `[workflow]` configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::WorkflowError;

/// The workflow API (`anchord workflow`). Every key is documented in
/// `anchord.example.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowConfig {
    /// Where the workflow API listens.
    pub listen: SocketAddr,
    /// Public base URL of proofs, printed (and as a QR code) on preservation
    /// certificates: `<proof_url>/<evidence hash>` is where a court checks
    /// one. Empty: `verifier.public_url` + `/v1/proofs`.
    pub proof_url: String,
    /// CJK font (TTF/OTF/TTC) embedded in preservation certificates.
    pub certificate_font: PathBuf,
    /// Directory uploaded files are stored in, content-addressed by SHA-256.
    pub storage_dir: PathBuf,
    /// Largest file accepted by an upload, bytes (413 beyond).
    pub max_upload_bytes: u64,
    /// Largest JSON request body, bytes.
    pub max_json_bytes: usize,
    /// Lifetime of a session token, seconds.
    pub session_ttl_s: u64,
    /// Failed logins in a row that lock an account.
    pub lockout_threshold: u32,
    /// How long a locked account stays locked, seconds.
    pub lockout_s: u64,
    /// Kafka brokers for evidence messages; empty: `ingest.brokers`.
    pub brokers: String,
    /// The evidence topic approvals publish to; empty: `ingest.topic`.
    pub evidence_topic: String,
    /// Extra librdkafka producer properties.
    pub librdkafka: std::collections::BTreeMap<String, String>,
    /// Ledger tenant the audit log's chain head is anchored under (must be
    /// one of `ingest.tenants`).
    pub audit_tenant: String,
    /// How often the audit chain's head is anchored, seconds (when it moved).
    pub audit_anchor_interval_s: u64,
    /// How often open submissions are published / linked to the ledger, ms.
    pub link_poll_ms: u64,
    /// Webhook delivery: attempts before a delivery is marked failed.
    pub webhook_max_attempts: u32,
    /// Webhook delivery: first retry delay, ms (doubles per attempt).
    pub webhook_backoff_initial_ms: u64,
    /// Webhook delivery: longest retry delay, ms.
    pub webhook_backoff_max_ms: u64,
    /// Webhook delivery: request timeout, ms.
    pub webhook_timeout_ms: u64,
    /// Webhook delivery: how often the outbox is polled, ms.
    pub webhook_poll_ms: u64,
    /// Bootstrap administrator created at start-up when no user of that
    /// name exists (empty: none).
    pub bootstrap_admin: String,
    /// File holding the bootstrap administrator's password (first line).
    pub bootstrap_admin_password_file: Option<PathBuf>,
    /// Environment variable holding it instead.
    pub bootstrap_admin_password_env: String,
    /// File holding the key-encryption key (32 random bytes: 64 hex digits
    /// or raw) that seals platform-held signing keys at rest. Needed only
    /// for `"custody": "platform"`; without it such requests answer 503
    /// `not_configured`.
    pub key_encryption_key_file: Option<PathBuf>,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            proof_url: String::new(),
            certificate_font: PathBuf::from(anchord_verifier::certificate::DEFAULT_FONT),
            storage_dir: PathBuf::from(".anchord/workflow-files"),
            max_upload_bytes: 100 << 20,
            max_json_bytes: 1 << 20,
            session_ttl_s: 8 * 3600,
            lockout_threshold: 5,
            lockout_s: 900,
            brokers: String::new(),
            evidence_topic: String::new(),
            librdkafka: Default::default(),
            audit_tenant: "anchord-workflow".into(),
            audit_anchor_interval_s: 3600,
            link_poll_ms: 500,
            webhook_max_attempts: 8,
            webhook_backoff_initial_ms: 1000,
            webhook_backoff_max_ms: 600_000,
            webhook_timeout_ms: 10_000,
            webhook_poll_ms: 500,
            bootstrap_admin: String::new(),
            bootstrap_admin_password_file: None,
            bootstrap_admin_password_env: "ANCHORD_WORKFLOW_ADMIN_PASSWORD".into(),
            key_encryption_key_file: None,
        }
    }
}

impl WorkflowConfig {
    /// Cross-field checks, naming the key at fault.
    pub fn validate(&self) -> Result<(), WorkflowError> {
        let bad = |s: &str| Err(WorkflowError::Config(s.into()));
        if !(self.proof_url.is_empty()
            || self.proof_url.starts_with("http://")
            || self.proof_url.starts_with("https://"))
        {
            return bad("workflow.proof_url must be an http:// or https:// URL (or empty)");
        }
        if self.storage_dir.as_os_str().is_empty() {
            return bad("workflow.storage_dir must not be empty");
        }
        if self.max_upload_bytes == 0 {
            return bad("workflow.max_upload_bytes must be positive");
        }
        if self.max_json_bytes < 1024 {
            return bad("workflow.max_json_bytes must be at least 1024");
        }
        if self.session_ttl_s == 0 {
            return bad("workflow.session_ttl_s must be positive");
        }
        if self.lockout_threshold == 0 {
            return bad("workflow.lockout_threshold must be positive");
        }
        if self.audit_anchor_interval_s == 0 {
            return bad("workflow.audit_anchor_interval_s must be positive");
        }
        if self.link_poll_ms == 0 || self.webhook_poll_ms == 0 {
            return bad("workflow.link_poll_ms and workflow.webhook_poll_ms must be positive");
        }
        if self.webhook_max_attempts == 0 {
            return bad("workflow.webhook_max_attempts must be positive");
        }
        if self.webhook_backoff_initial_ms == 0
            || self.webhook_backoff_max_ms < self.webhook_backoff_initial_ms
        {
            return bad(
                "workflow.webhook_backoff_initial_ms must be positive and at most workflow.webhook_backoff_max_ms",
            );
        }
        if self.audit_tenant.is_empty() || self.audit_tenant.len() > 64 {
            return bad("workflow.audit_tenant must be 1-64 bytes");
        }
        if !self.bootstrap_admin.is_empty()
            && self.bootstrap_admin_password_file.is_none()
            && self.bootstrap_admin_password_env.is_empty()
        {
            return bad(
                "workflow.bootstrap_admin needs workflow.bootstrap_admin_password_file or workflow.bootstrap_admin_password_env",
            );
        }
        Ok(())
    }
}
