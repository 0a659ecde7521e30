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
    /// TSA certificates (PEM or DER, one per file: the first certificate
    /// of a PEM file) this platform trusts, as the batcher's `tsa_cert`
    /// names its TSA's. A preservation certificate shows a checkpoint's
    /// RFC 3161 time as verified only when the token verifies under one of
    /// them; with none, the time is marked unverified by this platform.
    pub tsa_certs: Vec<PathBuf>,
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
    /// Webhook delivery: whole-request timeout, ms.
    pub webhook_timeout_ms: u64,
    /// Webhook delivery: connect timeout, ms.
    pub webhook_connect_timeout_ms: u64,
    /// Webhook delivery: requests in flight at once, in all.
    pub webhook_concurrency: usize,
    /// Webhook delivery: requests in flight at once to one webhook.
    pub webhook_per_target_concurrency: usize,
    /// Webhooks a bank (and the platform, for every bank) may register.
    pub webhook_max_per_tenant: i64,
    /// Exceptions to the outbound address policy (`egress.rs`) for
    /// on-premise webhook receivers: CIDRs (`10.20.0.0/16`), addresses
    /// (`127.0.0.1`) or exact host names. Cloud metadata addresses stay
    /// refused.
    pub webhook_allow: Vec<String>,
    /// How often released files are collected, seconds.
    pub file_gc_interval_s: u64,
    /// A file placed this recently is never collected, seconds.
    pub file_gc_grace_s: u64,
    /// How often the storage directory is swept for unreferenced files, seconds.
    pub file_gc_sweep_interval_s: u64,
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
    /// Password hashes computed or verified at once (argon2id, 19 MiB and
    /// a CPU each, off the async threads); 0: half the CPUs, at least 1.
    pub password_hash_concurrency: usize,
    /// How long a login or password change waits for a hashing slot before
    /// it answers 503, ms.
    pub password_hash_wait_ms: u64,
    /// Least zxcvbn strength score (0-4) of a new password.
    pub password_min_score: u8,
    /// Extra refused passwords, one a line (e.g. the most common breached
    /// passwords), besides the built-in list.
    pub password_blocklist_file: Option<PathBuf>,
    /// Request header naming the client's address, set by a reverse proxy in
    /// front (e.g. `x-forwarded-for`: its right-most address is used);
    /// empty: the TCP peer. Set it only behind such a proxy.
    pub client_ip_header: String,
    /// Login attempts per client address per minute (0: unlimited).
    pub login_per_ip_per_min: u32,
    /// Login attempts per username per minute (0: unlimited).
    pub login_per_account_per_min: u32,
    /// Changes (non-GET requests) per signed-in user per minute (0: unlimited).
    pub writes_per_user_per_min: u32,
    /// Changes per client address per minute (0: unlimited).
    pub writes_per_ip_per_min: u32,
    /// Requests without a valid session per client address per minute
    /// (0: unlimited).
    pub anonymous_per_ip_per_min: u32,
    /// Requests without a valid session and rate-limited requests are not
    /// audited one row each: they are counted and summarised in one audit
    /// row (`audit.noise_summary`) this often, seconds.
    pub noise_summary_interval_s: u64,
    /// How often expired and revoked sessions are purged, seconds.
    pub session_purge_interval_s: u64,
    /// How long an expired or revoked session is kept (so its token still
    /// answers `session_expired`) before it is purged, seconds.
    pub session_purge_grace_s: u64,
    /// The `Content-Security-Policy` of every answer.
    pub content_security_policy: String,
    /// `[workflow.smtp]`: the relay notification e-mails go through
    /// (`mailer.rs`); no host: no e-mail.
    pub smtp: SmtpConfig,
    /// `[workflow.sms]`: the SMS gateway invitations by phone go through
    /// (`sms.rs`); no url: no SMS.
    pub sms: SmsConfig,
    /// The deployment's time zone as a UTC offset (`+08:00`): dates in
    /// search filters (`from=2026-01-31`) are days in this zone, and
    /// certificates show their times in it beside UTC.
    pub utc_offset: String,
    /// `[workflow.monitor]`: the service instances the monitoring page
    /// scrapes (`monitor.rs`).
    pub monitor: MonitorConfig,
    /// The built web console (`console/`, `npm run build`), served at `/`
    /// (`console.rs`); relative to the working directory. Empty or without
    /// an `index.html`: `/` answers 503 saying how to build it.
    pub console_dir: PathBuf,
    /// The built court verification page (`console/verify/`), served at
    /// `/verify/`.
    pub verify_dir: PathBuf,
    /// The console's session cookie carries `Secure` (sent over https only;
    /// browsers also accept it from http://localhost). Set false only for
    /// a console reached over plain http on another host name.
    pub session_cookie_secure: bool,
}

/// The default `Content-Security-Policy`: nothing but same-origin scripts,
/// styles, images, fonts and fetches (no inline code, no plugins, no
/// framing, no base or form redirection), ready for a web console served by
/// the same origin; API answers need none of it.
pub const DEFAULT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            proof_url: String::new(),
            certificate_font: PathBuf::from(anchord_verifier::certificate::DEFAULT_FONT),
            tsa_certs: Vec::new(),
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
            webhook_timeout_ms: 5_000,
            webhook_connect_timeout_ms: 2_000,
            webhook_concurrency: 32,
            webhook_per_target_concurrency: 2,
            webhook_max_per_tenant: 10,
            webhook_allow: Vec::new(),
            file_gc_interval_s: 60,
            file_gc_grace_s: 600,
            file_gc_sweep_interval_s: 6 * 3600,
            webhook_poll_ms: 500,
            bootstrap_admin: String::new(),
            bootstrap_admin_password_file: None,
            bootstrap_admin_password_env: "ANCHORD_WORKFLOW_ADMIN_PASSWORD".into(),
            key_encryption_key_file: None,
            password_hash_concurrency: 0,
            password_hash_wait_ms: 10_000,
            password_min_score: 3,
            password_blocklist_file: None,
            client_ip_header: String::new(),
            login_per_ip_per_min: 30,
            login_per_account_per_min: 10,
            writes_per_user_per_min: 600,
            writes_per_ip_per_min: 1200,
            anonymous_per_ip_per_min: 300,
            noise_summary_interval_s: 60,
            session_purge_interval_s: 600,
            session_purge_grace_s: 3600,
            content_security_policy: DEFAULT_CSP.into(),
            smtp: SmtpConfig::default(),
            sms: SmsConfig::default(),
            utc_offset: "+08:00".into(),
            monitor: MonitorConfig::default(),
            console_dir: default_console_dir(),
            verify_dir: default_verify_dir(),
            session_cookie_secure: true,
        }
    }
}

/// `[workflow.monitor]`: per-instance monitoring (docs/workflow-api.md,
/// "Monitoring").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Admin listeners of the service instances to watch, as base URLs
    /// (`http://ingest-0:9464`): each one's `/metrics` and `/readyz` are
    /// scraped. The Helm chart fills them in from its services. Only these
    /// hosts are ever contacted (a pinned egress policy).
    pub instances: Vec<String>,
    /// How often every instance is scraped, ms.
    pub scrape_interval_ms: u64,
    /// Connect timeout of a scrape, ms.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout of a scrape, ms.
    pub timeout_ms: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            instances: Vec::new(),
            scrape_interval_ms: 15_000,
            connect_timeout_ms: 1_000,
            timeout_ms: 2_000,
        }
    }
}

/// `[workflow.smtp]`: the SMTP relay notification e-mails are sent
/// through (docs/workflow-api.md, "E-mail notifications"). Only the
/// operator chooses where mail goes: the relay is the one host the mailer
/// ever connects to (a pinned egress policy: cloud metadata addresses stay
/// refused), whatever addresses users give.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The relay's host name or IP address; empty: e-mail is off (no mail
    /// is queued).
    pub host: String,
    /// The relay's port (587: submission with STARTTLS; 25: relay).
    pub port: u16,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    /// Transport security: `starttls` (the default: STARTTLS required,
    /// never a plaintext downgrade), `implicit` (TLS from the first byte,
    /// SMTPS, usually port 465), `opportunistic` (STARTTLS when the relay
    /// offers it, plaintext otherwise; no credentials then) or `none` (a
    /// relay on the same host or a trusted network; no credentials). The
    /// relay's certificate is verified against `host` and the system roots,
    /// or only `ca_file` when set.
    pub tls: SmtpTls,
    /// PEM file of the certificate authorities the relay's certificate must
    /// chain to, instead of the system roots (a bank's internal CA).
    pub ca_file: Option<PathBuf>,
    /// Log in to the relay as this user (SMTP AUTH PLAIN or LOGIN, only
    /// over TLS: `tls` = `starttls` or `implicit`); empty: no login.
    pub username: String,
    /// The file holding the relay password (its first line); read at
    /// start-up, never logged.
    pub password_file: Option<PathBuf>,
    /// Or the environment variable holding it (when `password_file` is not
    /// set).
    pub password_env: String,
    /// Base URL of the links in mails (the web console's address, e.g.
    /// `https://anchord.example.com`); required with `host`.
    pub link_base: String,
    /// Connecting and talking to the relay: timeout, ms.
    pub timeout_ms: u64,
    /// How often the outbox is polled, ms.
    pub poll_ms: u64,
    /// Mails sent per pass.
    pub batch: usize,
    /// Attempts before a mail is marked failed.
    pub max_attempts: u32,
    /// First retry delay, ms (doubles per attempt).
    pub backoff_initial_ms: u64,
    /// Longest retry delay, ms.
    pub backoff_max_ms: u64,
    /// Sent and given-up mails are deleted from the outbox this many days
    /// after they finished (by the outbox loop, in bounded batches).
    pub retention_days: u32,
    /// How often the outbox loop purges rows past their retention and
    /// recounts the outbox (`anchord_workflow_outbox_messages`), seconds.
    pub purge_interval_s: u64,
}

/// `workflow.smtp.tls`: how the mailer secures its connection to the relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// STARTTLS required: a relay that does not offer it is refused.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// STARTTLS when offered, plaintext otherwise.
    Opportunistic,
    /// Plaintext.
    None,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            from: String::new(),
            tls: SmtpTls::Starttls,
            ca_file: None,
            username: String::new(),
            password_file: None,
            password_env: String::new(),
            link_base: String::new(),
            timeout_ms: 10_000,
            poll_ms: 1_000,
            batch: 20,
            max_attempts: 10,
            backoff_initial_ms: 5_000,
            backoff_max_ms: 3_600_000,
            retention_days: 30,
            purge_interval_s: 60,
        }
    }
}

impl SmtpConfig {
    /// Is e-mail on?
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }

    /// Cross-field checks, naming the key at fault.
    pub fn check(&self) -> Result<(), String> {
        if self.retention_days == 0 || self.purge_interval_s == 0 {
            return Err(
                "workflow.smtp.retention_days and purge_interval_s must be positive".into(),
            );
        }
        if !self.enabled() {
            return Ok(());
        }
        if !self.username.is_empty() {
            if !matches!(self.tls, SmtpTls::Starttls | SmtpTls::Implicit) {
                return Err(
                    "workflow.smtp.username: a login is sent only over TLS (tls = \"starttls\" or \"implicit\")"
                        .into(),
                );
            }
            if self.username.chars().any(char::is_control) || self.username.len() > 256 {
                return Err("workflow.smtp.username must be one line of at most 256 bytes".into());
            }
            if self.password_file.is_none() && self.password_env.is_empty() {
                return Err(
                    "workflow.smtp.username needs workflow.smtp.password_file or workflow.smtp.password_env"
                        .into(),
                );
            }
        } else if self.password_file.is_some() || !self.password_env.is_empty() {
            return Err(
                "workflow.smtp.password_file/password_env need workflow.smtp.username".into(),
            );
        }
        if self.ca_file.is_some() && self.tls == SmtpTls::None {
            return Err(
                "workflow.smtp.ca_file needs tls = \"starttls\", \"implicit\" or \"opportunistic\""
                    .into(),
            );
        }
        crate::egress::Policy::new(std::slice::from_ref(&self.host))
            .map_err(|e| format!("workflow.smtp.host: {e}"))?;
        if self.port == 0 {
            return Err("workflow.smtp.port must be positive".into());
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err()
            || self.from.chars().any(char::is_control)
        {
            return Err(
                "workflow.smtp.from must be an e-mail address (`Name <address>` or a bare address)"
                    .into(),
            );
        }
        let base = reqwest::Url::parse(&self.link_base)
            .map_err(|_| "workflow.smtp.link_base must be the console's http(s) URL".to_owned())?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err("workflow.smtp.link_base must be the console's http(s) URL".into());
        }
        if self.timeout_ms == 0 || self.poll_ms == 0 || self.batch == 0 || self.max_attempts == 0 {
            return Err(
                "workflow.smtp.timeout_ms, poll_ms, batch and max_attempts must be positive".into(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(
                "workflow.smtp.backoff_initial_ms must be positive and at most backoff_max_ms"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `[workflow.sms]`: the operator's SMS gateway, through which an outside
/// party invited by phone number receives the one-time link
/// (docs/workflow-api.md, "Contracts across organisations"). Each message
/// is an HTTP `POST` of a JSON body to `url` with a bearer token, queued in
/// the notification outbox with the invitation and retried like mail. The
/// gateway is the one host contacted (a pinned egress policy).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// The gateway's endpoint (`https://sms.bank.internal/v1/send`); empty:
    /// SMS is off (a phone invitation's link is shown to the initiator
    /// only, and the answer says so). Plain `http` only to a loopback
    /// address.
    pub url: String,
    /// The file holding the bearer token (its first line); required with
    /// `url`, read at start-up, never logged.
    pub token_file: Option<PathBuf>,
    /// Base URL of the links in messages; empty: `workflow.smtp.link_base`.
    pub link_base: String,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout, ms.
    pub timeout_ms: u64,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// First retry delay, ms (doubles per attempt).
    pub backoff_initial_ms: u64,
    /// Longest retry delay, ms.
    pub backoff_max_ms: u64,
    /// Sent and given-up messages are deleted from the outbox this many
    /// days after they finished.
    pub retention_days: u32,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: String::new(),
            token_file: None,
            link_base: String::new(),
            connect_timeout_ms: 2_000,
            timeout_ms: 10_000,
            max_attempts: 10,
            backoff_initial_ms: 5_000,
            backoff_max_ms: 3_600_000,
            retention_days: 30,
        }
    }
}

impl SmsConfig {
    /// Is SMS on?
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    /// The base of the links in messages.
    pub fn link_base<'a>(&'a self, smtp: &'a SmtpConfig) -> &'a str {
        if self.link_base.is_empty() {
            &smtp.link_base
        } else {
            &self.link_base
        }
    }

    /// Cross-field checks, naming the key at fault (the gateway's address
    /// against the egress policy: `sms::Gateway::load` at start-up).
    pub fn check(&self, smtp: &SmtpConfig) -> Result<(), String> {
        if self.retention_days == 0 {
            return Err("workflow.sms.retention_days must be positive".into());
        }
        if !self.enabled() {
            return Ok(());
        }
        if self.token_file.is_none() {
            return Err("workflow.sms.token_file is required with workflow.sms.url".into());
        }
        let base = reqwest::Url::parse(self.link_base(smtp)).map_err(|_| {
            "workflow.sms.link_base (or workflow.smtp.link_base) must be the console's http(s) URL"
                .to_owned()
        })?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err("workflow.sms.link_base must be the console's http(s) URL".into());
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 || self.max_attempts == 0 {
            return Err(
                "workflow.sms.timeout_ms, connect_timeout_ms and max_attempts must be positive"
                    .into(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(
                "workflow.sms.backoff_initial_ms must be positive and at most backoff_max_ms"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The most instances `[workflow.monitor]` lists.
pub const MAX_INSTANCES: usize = 256;

/// Check `workflow.monitor.instances`: http(s) base URLs with a host, no
/// credentials, query or fragment, each once.
pub fn check_instances(urls: &[String]) -> Result<(), String> {
    if urls.len() > MAX_INSTANCES {
        return Err(format!("at most {MAX_INSTANCES} instances"));
    }
    for (i, u) in urls.iter().enumerate() {
        let p = reqwest::Url::parse(u).map_err(|e| format!("{u:?} is not a URL: {e}"))?;
        if p.scheme() != "http" && p.scheme() != "https" {
            return Err(format!("{u:?}: only http and https"));
        }
        if p.host_str().is_none() {
            return Err(format!("{u:?} has no host"));
        }
        if !p.username().is_empty() || p.password().is_some() {
            return Err(format!("{u:?}: no credentials in the URL"));
        }
        if p.query().is_some() || p.fragment().is_some() {
            return Err(format!("{u:?}: a base URL has no query or fragment"));
        }
        if urls[..i].contains(u) {
            return Err(format!("{u:?} is listed twice"));
        }
    }
    crate::egress::Policy::pinned(urls, &[]).map(|_| ())
}

/// Parse a UTC offset `+08:00` / `-05:30` / `Z`.
pub fn parse_utc_offset(s: &str) -> Option<time::UtcOffset> {
    if s == "Z" || s == "z" {
        return Some(time::UtcOffset::UTC);
    }
    time::UtcOffset::parse(
        s,
        time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
    )
    .ok()
}

impl WorkflowConfig {
    /// The deployment's zone (`utc_offset`; UTC if it does not parse, which
    /// [`WorkflowConfig::validate`] refuses).
    pub fn zone(&self) -> time::UtcOffset {
        parse_utc_offset(&self.utc_offset).unwrap_or(time::UtcOffset::UTC)
    }

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
        if self.webhook_timeout_ms == 0 || self.webhook_connect_timeout_ms == 0 {
            return bad(
                "workflow.webhook_timeout_ms and workflow.webhook_connect_timeout_ms must be positive",
            );
        }
        if self.webhook_concurrency == 0 || self.webhook_per_target_concurrency == 0 {
            return bad(
                "workflow.webhook_concurrency and workflow.webhook_per_target_concurrency must be positive",
            );
        }
        if self.webhook_max_per_tenant <= 0 {
            return bad("workflow.webhook_max_per_tenant must be positive");
        }
        if let Err(e) = crate::egress::Policy::new(&self.webhook_allow) {
            return Err(WorkflowError::Config(format!(
                "workflow.webhook_allow: {e}"
            )));
        }
        if self.file_gc_interval_s == 0 || self.file_gc_sweep_interval_s == 0 {
            return bad(
                "workflow.file_gc_interval_s and workflow.file_gc_sweep_interval_s must be positive",
            );
        }
        if self.audit_tenant.is_empty() || self.audit_tenant.len() > 64 {
            return bad("workflow.audit_tenant must be 1-64 bytes");
        }
        if self.password_min_score > 4 {
            return bad("workflow.password_min_score must be 0-4 (zxcvbn scores)");
        }
        if self.password_hash_wait_ms == 0 {
            return bad("workflow.password_hash_wait_ms must be positive");
        }
        if self.noise_summary_interval_s == 0 || self.session_purge_interval_s == 0 {
            return bad(
                "workflow.noise_summary_interval_s and workflow.session_purge_interval_s must be positive",
            );
        }
        if !self.client_ip_header.is_empty()
            && axum::http::HeaderName::from_bytes(self.client_ip_header.as_bytes()).is_err()
        {
            return bad("workflow.client_ip_header must be a header name");
        }
        if axum::http::HeaderValue::from_str(&self.content_security_policy).is_err() {
            return bad("workflow.content_security_policy must be a valid header value");
        }
        self.smtp.check().map_err(WorkflowError::Config)?;
        self.sms.check(&self.smtp).map_err(WorkflowError::Config)?;
        if parse_utc_offset(&self.utc_offset).is_none() {
            return bad("workflow.utc_offset must be a UTC offset such as +08:00");
        }
        if let Err(e) = check_instances(&self.monitor.instances) {
            return Err(WorkflowError::Config(format!(
                "workflow.monitor.instances: {e}"
            )));
        }
        if self.monitor.scrape_interval_ms < 100
            || self.monitor.connect_timeout_ms == 0
            || self.monitor.timeout_ms == 0
        {
            return bad(
                "workflow.monitor.scrape_interval_ms must be at least 100 and its timeouts positive",
            );
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

/// The default console directory.
pub fn default_console_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("console/dist")
}

/// The default verification page directory.
pub fn default_verify_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("console/verify/dist")
}

/// The first line of a secret file (a password, a token), for the settings
/// that name one; `key` names the setting in the error.
pub(crate) fn secret_file_line(path: &std::path::Path, key: &str) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
