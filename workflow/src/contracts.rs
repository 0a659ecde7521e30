//! Multi-party e-contracts.
//!
//! A bank user starts a contract from a contract type (template text with
//! `{{variable}}` placeholders) and names the signers: users of the same
//! bank, users of other organisations (banks, enterprises: a user's
//! organisation is its `tenant`), or outside parties invited by e-mail or
//! phone with a one-time link (a random token, only its SHA-256 stored,
//! valid [`INVITATION_TTL_S`], used once) by which they register or log in
//! as the signer of that slot. Every signer can read and sign the contract;
//! the initiating bank's reviewer reviews it. The template is filled in one pass: each of its own placeholders
//! is replaced by its value as literal text (a value containing `{{x}}`
//! stays `{{x}}`); variables the template does not name, and placeholders
//! left without a value, are refused, and the rendered body is at most
//! [`MAX_BODY_BYTES`]. The contract's hash is SHA-256 (SM3 under the sm3
//! suite) of the rendered UTF-8 text.
//!
//! Each signer signs, with Ed25519, the domain-separated statement of
//! [`signature_statement`], which names the contract, its hash and hash
//! algorithm, the signer and the signer's key; so a signature is valid in
//! exactly one signer's slot of exactly one contract. A signer holds their
//! key (they register its public key with a proof of possession: a
//! signature over [`registration_statement`], which names them and a
//! one-time server challenge) or lets the platform keep it
//! ([`crate::keyseal`]; stated as such in every response). Status:
//! `signing → awaiting_review → approved → on_chain`, or `refused` (a signer
//! refused) or `rejected` (the reviewer); every transition is guarded in SQL
//! (`store/contracts.rs` holds every statement).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::authz::{Caller, Require, Role, roles};
use crate::error::{ApiError, Json, Path, Query};
use crate::evidence::{self, NewSubmission};
use crate::preservations::{LedgerJson, Reason, bundle_of, ledger_view};
use crate::status::{self, Actor, ContractStatus, SignerStatus, Status};
use crate::store::contracts as store;
use crate::{Workflow, events, ts, ts_opt};

/// What a platform-held key means, said wherever one is used.
pub const PLATFORM_CUSTODY_STATEMENT: &str = "This signature was made with an Ed25519 key that the platform generated and keeps on the signer's behalf (platform custody), not with a key held by the signer.";

/// The largest rendered contract body, in bytes (UTF-8).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The longest template, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 100_000;
/// The most distinct placeholders a template may have.
pub const MAX_PLACEHOLDERS: usize = 100;
/// The longest variable value, in characters.
pub const MAX_VALUE_CHARS: usize = 2000;
/// The longest placeholder name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The first line of every contract signature statement.
pub const SIGNATURE_DOMAIN: &str = "anchord-contract-signature/v1";
/// The first line of every key-registration (proof of possession) statement.
pub const REGISTRATION_DOMAIN: &str = "anchord-signing-key-registration/v1";
/// How long a key-registration challenge is valid, in seconds.
pub const CHALLENGE_TTL_S: i64 = 600;

// ---------------------------------------------------------------------------
// Templates

/// One piece of a template: literal text, or a placeholder `{{name}}` (the
/// name may be surrounded by spaces inside the braces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Var {
        /// The name, trimmed.
        name: &'a str,
        /// The placeholder as written, braces included.
        raw: &'a str,
    },
}

/// Is `name` a placeholder name: 1-64 characters, each a letter or digit
/// (any script) or `_`, `-`, `.`.
pub fn is_placeholder_name(name: &str) -> bool {
    let mut n = 0usize;
    for ch in name.chars() {
        n += 1;
        if n > MAX_NAME_CHARS || !(ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.')) {
            return false;
        }
    }
    n > 0
}

/// Split a template into literal text and placeholders, in one pass
/// (linear in the template's length). A `{{` that does not open a
/// well-formed placeholder is literal text.
pub fn parse_template(t: &str) -> Vec<Piece<'_>> {
    let name_or_space = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ');
    let mut out = Vec::new();
    // Byte offsets, always at char boundaries (after ASCII `{{`/`}}` or a
    // whole run of chars); `get` never panics regardless.
    let mut text_start = 0usize;
    let mut pos = 0usize;
    while let Some(found) = t.get(pos..).and_then(|r| r.find("{{")) {
        let open = pos + found;
        let inner_start = open + 2;
        let after = t.get(inner_start..).unwrap_or_default();
        let run: usize = after
            .chars()
            .take_while(|c| name_or_space(*c))
            .map(char::len_utf8)
            .sum();
        let inner = after.get(..run).unwrap_or_default();
        let name = inner.trim_matches(' ');
        let closed = after.get(run..).is_some_and(|r| r.starts_with("}}"));
        if closed && is_placeholder_name(name) {
            let end = inner_start + run + 2;
            if open > text_start {
                out.push(Piece::Text(t.get(text_start..open).unwrap_or_default()));
            }
            out.push(Piece::Var {
                name,
                raw: t.get(open..end).unwrap_or_default(),
            });
            text_start = end;
            pos = end;
        } else {
            pos = inner_start;
        }
    }
    if text_start < t.len() {
        out.push(Piece::Text(t.get(text_start..).unwrap_or_default()));
    }
    out
}

/// The distinct placeholder names of a template, in order of first use.
pub fn placeholders(t: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in parse_template(t) {
        if let Piece::Var { name, .. } = p
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_owned());
        }
    }
    out
}

/// Why a template cannot be filled with the given variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError(pub BTreeMap<String, String>);

/// Fill `template` in one pass: each placeholder of the template is
/// replaced by its value as literal text (values are never scanned for
/// placeholders). Refused, with a message per problem: variables the
/// template does not name, placeholders without a value, values empty or
/// over [`MAX_VALUE_CHARS`], and a result over `max_bytes` (computed before
/// anything is built).
pub fn render(
    template: &str,
    variables: &BTreeMap<String, String>,
    max_bytes: usize,
) -> Result<String, RenderError> {
    let pieces = parse_template(template);
    let mut errs = BTreeMap::new();
    let names = placeholders(template);
    for k in variables.keys() {
        if !names.iter().any(|n| n == k) {
            errs.insert(
                format!("variables.{k}"),
                "not a placeholder of this contract type".to_owned(),
            );
        }
    }
    for n in &names {
        match variables.get(n) {
            None => {
                errs.insert(format!("variables.{n}"), "required".to_owned());
            }
            Some(v) if v.is_empty() || v.chars().count() > MAX_VALUE_CHARS => {
                errs.insert(
                    format!("variables.{n}"),
                    format!("1-{MAX_VALUE_CHARS} characters"),
                );
            }
            Some(_) => {}
        }
    }
    if !errs.is_empty() {
        return Err(RenderError(errs));
    }
    let mut size = 0usize;
    for p in &pieces {
        size = size.saturating_add(match p {
            Piece::Text(t) => t.len(),
            Piece::Var { name, .. } => variables.get(*name).map_or(0, String::len),
        });
    }
    if size > max_bytes {
        errs.insert(
            "variables".to_owned(),
            format!("the rendered contract would be {size} bytes; the limit is {max_bytes} bytes"),
        );
        return Err(RenderError(errs));
    }
    let mut out = String::with_capacity(size);
    for p in &pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, .. } => {
                out.push_str(variables.get(*name).map_or("", String::as_str))
            }
        }
    }
    Ok(out)
}

/// Check a new contract type: field-level messages.
pub fn check_contract_type(t: &NewContractType) -> Result<(), ApiError> {
    let mut errs = BTreeMap::new();
    if t.name.trim().is_empty() || t.name.chars().count() > 200 {
        errs.insert("name".into(), "1-200 characters".into());
    }
    if t.template_text.is_empty() || t.template_text.chars().count() > MAX_TEMPLATE_CHARS {
        errs.insert(
            "template_text".into(),
            format!("1-{MAX_TEMPLATE_CHARS} characters"),
        );
    } else if placeholders(&t.template_text).len() > MAX_PLACEHOLDERS {
        errs.insert(
            "template_text".into(),
            format!("at most {MAX_PLACEHOLDERS} distinct placeholders"),
        );
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errs))
    }
}

// ---------------------------------------------------------------------------
// Signed statements

/// The fields a contract signature statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFields<'a> {
    pub contract_id: i64,
    /// e.g. `HT0000000017`.
    pub contract_number: &'a str,
    /// The contract's bank (ledger tenant).
    pub tenant: &'a str,
    /// `sha256` or `sm3`.
    pub hash_alg: &'a str,
    /// Lowercase hex digest of the contract body (UTF-8).
    pub contract_hash: &'a str,
    /// 0-based position of the signer's slot.
    pub signer_index: i32,
    pub signer_user_id: i64,
    pub signer_username: &'a str,
    /// Lowercase hex Ed25519 public key of the signer.
    pub public_key: &'a str,
}

/// Is `s` safe on a statement line: 1-64 characters from `[A-Za-z0-9._@-]`
/// (tenants, usernames, numbers, algorithm names and hex all are).
fn statement_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// The exact text a signer signs (Ed25519 over its UTF-8 bytes), or `None`
/// when a field cannot be written unambiguously (never for stored records:
/// every field comes from a checked alphabet).
///
/// ```text
/// anchord-contract-signature/v1
/// contract-id 17
/// contract-number HT0000000017
/// tenant bank-a
/// hash-alg sha256
/// contract-hash <64 lowercase hex digits>
/// signer-index 0
/// signer-user-id 42
/// signer-username signer1
/// public-key <64 lowercase hex digits>
/// ```
///
/// Lines end with `\n` (the last one too); no other whitespace.
pub fn signature_statement(f: &StatementFields<'_>) -> Option<String> {
    let tokens = [
        f.contract_number,
        f.tenant,
        f.hash_alg,
        f.contract_hash,
        f.signer_username,
        f.public_key,
    ];
    if !tokens.iter().all(|t| statement_token(t)) {
        return None;
    }
    Some(format!(
        "{SIGNATURE_DOMAIN}\ncontract-id {}\ncontract-number {}\ntenant {}\nhash-alg {}\ncontract-hash {}\nsigner-index {}\nsigner-user-id {}\nsigner-username {}\npublic-key {}\n",
        f.contract_id,
        f.contract_number,
        f.tenant,
        f.hash_alg,
        f.contract_hash,
        f.signer_index,
        f.signer_user_id,
        f.signer_username,
        f.public_key,
    ))
}

/// The exact text signed to prove possession of a key at registration:
///
/// ```text
/// anchord-signing-key-registration/v1
/// user-id 42
/// username signer1
/// public-key <64 lowercase hex digits>
/// challenge <64 lowercase hex digits>
/// ```
pub fn registration_statement(
    user_id: i64,
    username: &str,
    public_key_hex: &str,
    challenge_hex: &str,
) -> Option<String> {
    if ![username, public_key_hex, challenge_hex]
        .iter()
        .all(|t| statement_token(t))
    {
        return None;
    }
    Some(format!(
        "{REGISTRATION_DOMAIN}\nuser-id {user_id}\nusername {username}\npublic-key {public_key_hex}\nchallenge {challenge_hex}\n"
    ))
}

/// `hex` as exactly `N` bytes (any case), or `None`.
pub fn hex_bytes<const N: usize>(hex_text: &str) -> Option<[u8; N]> {
    if hex_text.len() != 2 * N || !hex_text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// A hex Ed25519 public key that is a valid, not small-order point.
pub fn parse_public_key(hex_text: &str) -> Option<VerifyingKey> {
    let bytes = hex_bytes::<32>(hex_text)?;
    let vk = VerifyingKey::from_bytes(&bytes).ok()?;
    (!vk.is_weak()).then_some(vk)
}

/// Does `signature` (hex) verify over `message` under `key` (strict
/// RFC 8032 verification: no small-order keys, canonical signatures)?
pub fn verify_hex(key: &VerifyingKey, message: &str, signature_hex: &str) -> bool {
    hex_bytes::<64>(signature_hex).is_some_and(|sig| {
        key.verify_strict(message.as_bytes(), &Signature::from_bytes(&sig))
            .is_ok()
    })
}

// ---------------------------------------------------------------------------
// Contract types

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContractType {
    pub name: String,
    /// Template text; `{{name}}` placeholders (names of letters, digits,
    /// `_`, `-`, `.`; at most 100 distinct) are filled from `variables`.
    pub template_text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractTypeJson {
    pub id: i64,
    pub name: String,
    pub template_text: String,
    /// Placeholders found in the template.
    pub variables: Vec<String>,
    pub created_at: String,
}

/// A contract type in lists: without its template text.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractTypeSummaryJson {
    pub id: i64,
    pub name: String,
    /// Placeholders found in the template.
    pub variables: Vec<String>,
    /// The template's length in characters (the text: `GET /contract-types/{id}`).
    pub template_chars: i64,
    pub created_at: String,
}

impl From<store::ContractType> for ContractTypeJson {
    fn from(t: store::ContractType) -> Self {
        ContractTypeJson {
            id: t.id,
            name: t.name,
            variables: placeholders(&t.template_text),
            template_text: t.template_text,
            created_at: ts(t.created_at),
        }
    }
}

/// Create a contract type (administrators).
#[utoipa::path(post, path = "/v1/contract-types", request_body = NewContractType,
    responses((status = 201, body = ContractTypeJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_type(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(t): Json<NewContractType>,
) -> Result<(StatusCode, axum::Json<ContractTypeJson>), ApiError> {
    check_contract_type(&t)?;
    let c = wf.db().await?;
    let t = store::create_type(c.client(), t.name.trim(), &t.template_text).await?;
    Ok((StatusCode::CREATED, axum::Json(t.into())))
}

/// Contract types (without their template text).
#[utoipa::path(get, path = "/v1/contract-types", responses((status = 200, body = [ContractTypeSummaryJson])))]
pub async fn list_types(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
) -> Result<axum::Json<Vec<ContractTypeSummaryJson>>, ApiError> {
    let c = wf.db().await?;
    let types = store::list_types(c.client()).await?;
    Ok(axum::Json(
        types
            .into_iter()
            .map(|t| ContractTypeSummaryJson {
                id: t.id,
                name: t.name,
                variables: placeholders(&t.template_text),
                template_chars: t.template_text.chars().count() as i64,
                created_at: ts(t.created_at),
            })
            .collect(),
    ))
}

/// One contract type, with its template text.
#[utoipa::path(get, path = "/v1/contract-types/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ContractTypeJson), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_type(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<ContractTypeJson>, ApiError> {
    let c = wf.db().await?;
    Ok(axum::Json(store::get_type(c.client(), id).await?.into()))
}

// ---------------------------------------------------------------------------
// Signing keys

#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeJson {
    /// 32 random bytes, hex: put it in the registration statement.
    pub challenge: String,
    pub expires_at: String,
    /// The registration statement with the caller's identity filled in;
    /// replace `<public-key>` with the key's 64 lowercase hex digits and
    /// sign the UTF-8 bytes (Ed25519) with that key.
    pub statement_template: String,
}

/// A one-time challenge for registering a client-held key (valid 10
/// minutes; a new one replaces the previous one).
#[utoipa::path(post, path = "/v1/me/signing-key/challenge",
    responses((status = 201, body = ChallengeJson)))]
pub async fn key_challenge(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Signers>,
) -> Result<(StatusCode, axum::Json<ChallengeJson>), ApiError> {
    let challenge = crate::random32();
    let c = wf.db().await?;
    let expires_at =
        store::put_challenge(c.client(), caller.id, &challenge, CHALLENGE_TTL_S).await?;
    let hex_challenge = hex::encode(challenge);
    Ok((
        StatusCode::CREATED,
        axum::Json(ChallengeJson {
            statement_template: format!(
                "{REGISTRATION_DOMAIN}\nuser-id {}\nusername {}\npublic-key <public-key>\nchallenge {hex_challenge}\n",
                caller.id, caller.username
            ),
            challenge: hex_challenge,
            expires_at: ts(expires_at),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRequest {
    /// `client` (send `public_key`, `challenge` and `proof`) or `platform`
    /// (the platform generates and keeps the key for you).
    pub custody: String,
    /// Hex Ed25519 public key (32 bytes), for `client`.
    pub public_key: Option<String>,
    /// The challenge from `POST /v1/me/signing-key/challenge`, for `client`.
    pub challenge: Option<String>,
    /// Hex Ed25519 signature by the key over the registration statement
    /// (proof of possession), for `client`.
    pub proof: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyJson {
    pub custody: String,
    pub public_key: String,
    pub statement: Option<&'static str>,
}

/// The key-encryption key platform-held keys need, or 503 `not_configured`.
fn platform_kek(wf: &Workflow) -> Result<&crate::keyseal::Kek, ApiError> {
    wf.kek.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "platform-held signing keys are not available: workflow.key_encryption_key_file is not configured; register your own key (custody client)",
        )
    })
}

/// A client key request's checked parts: the key, the challenge and the
/// proof's signed statement (field-level messages otherwise).
pub fn check_client_key(
    user_id: i64,
    username: &str,
    k: &SigningKeyRequest,
) -> Result<(VerifyingKey, [u8; 32], String, Vec<u8>), ApiError> {
    let mut errs = BTreeMap::new();
    let key = k.public_key.as_deref().and_then(parse_public_key);
    if key.is_none() {
        errs.insert(
            "public_key".to_owned(),
            "a hex Ed25519 public key (64 hex digits), not a small-order point".to_owned(),
        );
    }
    let challenge = k.challenge.as_deref().and_then(hex_bytes::<32>);
    if challenge.is_none() {
        errs.insert(
            "challenge".to_owned(),
            "required: the 64 hex digits from POST /v1/me/signing-key/challenge".to_owned(),
        );
    }
    let proof = k.proof.as_deref().and_then(hex_bytes::<64>);
    if proof.is_none() {
        errs.insert(
            "proof".to_owned(),
            "required: a hex Ed25519 signature (128 hex digits) by the key over the registration statement (proof of possession)".to_owned(),
        );
    }
    let (Some(key), Some(challenge), Some(proof)) = (key, challenge, proof) else {
        return Err(ApiError::validation(errs));
    };
    let pk_hex = hex::encode(key.to_bytes());
    let statement = registration_statement(user_id, username, &pk_hex, &hex::encode(challenge))
        .ok_or_else(ApiError::internal)?;
    if key
        .verify_strict(statement.as_bytes(), &Signature::from_bytes(&proof))
        .is_err()
    {
        return Err(ApiError::field(
            "proof",
            "does not verify: sign the registration statement (docs/workflow-api.md) with the key's private half",
        ));
    }
    Ok((key, challenge, statement, proof.to_vec()))
}

/// A key to register: public key, sealed seed (platform), challenge and
/// proof (statement, signature) (client).
type KeyParts = (
    [u8; 32],
    Option<Vec<u8>>,
    Option<[u8; 32]>,
    Option<(String, Vec<u8>)>,
);

/// The caller's registered signing key, as `GET /v1/me/signing-key`
/// answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredKeyJson {
    /// `client` (held by the user) or `platform`.
    pub custody: String,
    /// The Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// `SHA256:` + hex SHA-256 of the 32 key bytes (as certificates show it).
    pub key_fingerprint: String,
    /// When it was registered (RFC 3339, UTC).
    pub registered_at: String,
}

/// The caller's registered signing key (custody, public key, fingerprint,
/// registration time), so a client can compare it with the key it holds
/// before registering again; 404 `no_signing_key` when none is registered.
#[utoipa::path(get, path = "/v1/me/signing-key",
    responses((status = 200, body = RegisteredKeyJson),
              (status = 404, description = "`no_signing_key`: none registered", body = crate::error::ErrorBody)))]
pub async fn get_key(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Signers>,
) -> Result<axum::Json<RegisteredKeyJson>, ApiError> {
    let c = wf.db().await?;
    let Some((custody, public_key, at)) = store::registered_key(c.client(), caller.id).await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_signing_key",
            "no signing key is registered: register one (PUT /v1/me/signing-key)",
        ));
    };
    Ok(axum::Json(RegisteredKeyJson {
        custody,
        key_fingerprint: key_fingerprint(&public_key),
        public_key: hex::encode(&public_key),
        registered_at: crate::ts(at),
    }))
}

/// Register (or replace) the caller's signing key: a client-held key with
/// a proof of possession, or a platform-held one. A key registered to (or
/// used by) another user answers 409.
#[utoipa::path(put, path = "/v1/me/signing-key", request_body = SigningKeyRequest,
    responses((status = 200, body = SigningKeyJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn register_key(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Signers>,
    Json(k): Json<SigningKeyRequest>,
) -> Result<
    (
        axum::Extension<crate::audit::AuditObject>,
        axum::Json<SigningKeyJson>,
    ),
    ApiError,
> {
    let (public, seed, challenge, pop): KeyParts = match k.custody.as_str() {
        "client" => {
            let (key, challenge, statement, proof) =
                check_client_key(caller.id, &caller.username, &k)?;
            (
                key.to_bytes(),
                None,
                Some(challenge),
                Some((statement, proof)),
            )
        }
        "platform" => {
            if k.public_key.is_some() || k.challenge.is_some() || k.proof.is_some() {
                return Err(ApiError::field(
                    "custody",
                    "platform custody takes no public_key, challenge or proof",
                ));
            }
            let kek = platform_kek(&wf)?;
            let (public, sealed) = kek.generate(caller.id);
            (public, Some(sealed), None, None)
        }
        _ => return Err(ApiError::field("custody", "client or platform")),
    };
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    if let Some(ch) = challenge {
        // One use, before it expires.
        if !store::use_challenge(&tx, caller.id, &ch).await? {
            return Err(ApiError::field(
                "challenge",
                "unknown, already used or expired: request a new one (POST /v1/me/signing-key/challenge)",
            ));
        }
    }
    if store::key_signed_for_another(&tx, &public, caller.id).await? {
        return Err(ApiError::conflict(
            "this public key has signed for another user; keys are not shared",
        ));
    }
    let (pop_statement, pop_signature) = pop.unzip();
    let registered = store::put_key(
        &tx,
        &store::NewKey {
            user_id: caller.id,
            custody: &k.custody,
            public_key: &public,
            sealed_seed: seed.as_deref(),
            pop_statement: pop_statement.as_deref(),
            pop_signature: pop_signature.as_deref(),
        },
    )
    .await?;
    if !registered {
        return Err(ApiError::conflict(
            "this public key is registered to another user; keys are not shared",
        ));
    }
    tx.commit().await?;
    // The audit row names the key registered.
    let object = crate::audit::AuditObject(format!(
        "/v1/users/{}/signing-key/{}/{}",
        caller.id,
        k.custody,
        hex::encode(public)
    ));
    Ok((
        axum::Extension(object),
        axum::Json(SigningKeyJson {
            statement: (k.custody == "platform").then_some(PLATFORM_CUSTODY_STATEMENT),
            custody: k.custody,
            public_key: hex::encode(public),
        }),
    ))
}

// ---------------------------------------------------------------------------
// Contracts

/// How long an invitation link of an outside party is valid, in seconds
/// (7 days).
pub const INVITATION_TTL_S: i64 = 7 * 24 * 3600;
/// The most signers a contract may have.
pub const MAX_SIGNERS: usize = 20;

/// A signer of a new contract: a username of the initiator's own bank, or
/// an object naming a user of another organisation (`username` and
/// `organisation`) or an outside party to invite (`email` or `phone`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SignerSpec {
    /// A user of the initiator's bank, by username.
    Username(String),
    Party(PartySpec),
}

/// A signer named by organisation, or an outside party to invite.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartySpec {
    /// A user of `organisation` (a bank or enterprise id, as users'
    /// `tenant`).
    pub username: Option<String>,
    pub organisation: Option<String>,
    /// An outside party's e-mail address: they get a one-time invitation
    /// link.
    pub email: Option<String>,
    /// An outside party's mobile number (`+` and 6-20 digits): they get a
    /// one-time invitation link.
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    pub contract_type_id: i64,
    pub title: String,
    /// Values of the template's placeholders: exactly the template's
    /// placeholders, each 1-2000 characters of literal text.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The signers, in signing order (1-20): usernames of the initiator's
    /// bank, users of other organisations, or outside parties to invite.
    pub signers: Vec<SignerSpec>,
}

/// A checked signer of a new contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    User {
        username: String,
        organisation: Option<String>,
    },
    Email(String),
    Phone(String),
}

/// Is `s` an e-mail address we accept (one `@`, no spaces or controls,
/// 3-254 characters, a dot in the domain)?
pub fn is_email(s: &str) -> bool {
    let n = s.chars().count();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    (3..=254).contains(&n)
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Is `s` a phone number we accept (an optional `+`, then 6-20 digits)?
pub fn is_phone(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (6..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Check a new contract's own fields (not those that need the database):
/// field-level messages into `errs`; returns the checked signers.
pub fn check_new_contract(n: &NewContract, errs: &mut BTreeMap<String, String>) -> Vec<Party> {
    if n.title.trim().is_empty()
        || n.title.chars().count() > 200
        || n.title.chars().any(crate::text::unfit_in_name)
    {
        errs.insert(
            "title".into(),
            "1-200 characters, no control characters or bidirectional overrides".into(),
        );
    }
    if n.variables.len() > MAX_PLACEHOLDERS {
        errs.insert(
            "variables".into(),
            format!("at most {MAX_PLACEHOLDERS} variables"),
        );
    }
    if n.signers.is_empty() || n.signers.len() > MAX_SIGNERS {
        errs.insert("signers".into(), format!("1 to {MAX_SIGNERS} signers"));
        return Vec::new();
    }
    let username_ok = |name: &str| !name.is_empty() && name.chars().count() <= 64;
    let mut out = Vec::new();
    for (i, s) in n.signers.iter().enumerate() {
        let field = format!("signers[{i}]");
        let party = match s {
            SignerSpec::Username(name) if username_ok(name) => Some(Party::User {
                username: name.clone(),
                organisation: None,
            }),
            SignerSpec::Username(_) => None,
            SignerSpec::Party(p) => match (&p.username, &p.organisation, &p.email, &p.phone) {
                (Some(u), Some(o), None, None)
                    if username_ok(u) && !o.is_empty() && o.chars().count() <= 64 =>
                {
                    Some(Party::User {
                        username: u.clone(),
                        organisation: Some(o.clone()),
                    })
                }
                (Some(u), None, None, None) if username_ok(u) => Some(Party::User {
                    username: u.clone(),
                    organisation: None,
                }),
                (None, None, Some(e), None) if is_email(e) => Some(Party::Email(e.clone())),
                (None, None, None, Some(ph)) if is_phone(ph) => Some(Party::Phone(ph.clone())),
                _ => None,
            },
        };
        match party {
            Some(p) if out.contains(&p) => {
                errs.insert(field, "listed twice".into());
            }
            Some(p) => out.push(p),
            None => {
                errs.insert(
                    field,
                    "a username of your bank, {\"username\", \"organisation\"} of another, or an outside party's {\"email\"} or {\"phone\"} (+ and 6-20 digits)".into(),
                );
            }
        }
    }
    out
}

/// An outside party's invitation (never its token, which only the
/// initiator sees once, in `invitation_links`).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationJson {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub expires_at: String,
    /// When the invitee redeemed it (then `user_id` is set).
    pub redeemed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignerJson {
    pub index: i32,
    /// `null` while an invited outside party has not redeemed the
    /// invitation.
    pub user_id: Option<i64>,
    pub username: Option<String>,
    /// The signer's organisation (bank or enterprise); `null` for outside
    /// parties.
    pub organisation: Option<String>,
    /// `pending`, `signed`, `refused`.
    pub status: String,
    /// `client` or `platform` (the platform holds the key), once signed.
    pub custody: Option<String>,
    pub custody_statement: Option<&'static str>,
    pub public_key: Option<String>,
    /// Hex Ed25519 signature over `statement` (UTF-8).
    pub signature: Option<String>,
    /// The exact statement signed (`anchord-contract-signature/v1`), once
    /// signed; `null` for signatures made before version 1 (over the bare
    /// hash bytes).
    pub statement: Option<String>,
    pub refuse_reason: Option<String>,
    pub invited_at: String,
    pub signed_at: Option<String>,
    pub refused_at: Option<String>,
    /// Outside parties: their invitation.
    pub invitation: Option<InvitationJson>,
}

impl From<store::Signer> for SignerJson {
    fn from(s: store::Signer) -> Self {
        SignerJson {
            index: s.index,
            user_id: s.user_id,
            username: s.username,
            organisation: s.organisation,
            status: s.status.as_str().to_owned(),
            custody_statement: (s.custody.as_deref() == Some("platform"))
                .then_some(PLATFORM_CUSTODY_STATEMENT),
            custody: s.custody,
            public_key: s.public_key.map(hex::encode),
            signature: s.signature.map(hex::encode),
            statement: s.statement,
            refuse_reason: s.refuse_reason,
            invited_at: ts(s.invited_at),
            signed_at: ts_opt(s.signed_at),
            refused_at: ts_opt(s.refused_at),
            invitation: s.invitation.map(|i| InvitationJson {
                email: i.email,
                phone: i.phone,
                expires_at: ts(i.expires_at),
                redeemed_at: ts_opt(i.redeemed_at),
            }),
        }
    }
}

/// A one-time invitation link for an outside signer, shown once, to the
/// initiator, in the creation response (only its hash is stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationLinkJson {
    /// The signer's slot.
    pub index: i32,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The secret token (64 hex digits): `POST /v1/invitations/register`
    /// or `/accept` with it.
    pub token: String,
    /// The console's invitation page with the token in the fragment (never
    /// sent to a server by a browser); prefix the console's origin.
    pub link: String,
    pub expires_at: String,
    /// How the link reaches the invitee: `email` or `sms` (queued in the
    /// notification outbox with the contract, retried until delivered), or
    /// `none`: nothing was sent, pass the link on yourself.
    pub delivery: InvitationDelivery,
    /// Why, in words (for `none`: which channel is off).
    pub delivery_note: String,
}

/// How an invitation link reaches the invitee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationDelivery {
    /// An invitation mail is queued (`[workflow.smtp]`).
    Email,
    /// An SMS is queued (`[workflow.sms]`).
    Sms,
    /// Nothing was sent.
    None,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractJson {
    pub id: i64,
    pub number: String,
    /// The initiating bank (organisation).
    pub tenant: String,
    pub contract_type_id: i64,
    pub title: String,
    pub body: String,
    pub hash_alg: String,
    /// Hex digest of `body` (UTF-8), named in every signer's statement.
    pub contract_hash: String,
    /// `signing`, `awaiting_review`, `approved`, `on_chain`, `refused`, `rejected`.
    pub status: String,
    pub reject_reason: Option<String>,
    pub created_by: i64,
    pub reviewed_by: Option<i64>,
    pub signers: Vec<SignerJson>,
    /// Signers who signed, of `signers`.
    pub signed_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub reviewed_at: Option<String>,
    pub ledger: Option<LedgerJson>,
    /// Only in the creation response: the outside signers' invitation
    /// links (the tokens are not stored and never shown again).
    pub invitation_links: Vec<InvitationLinkJson>,
}

fn signed_count(signers: &[store::Signer]) -> i64 {
    signers
        .iter()
        .filter(|s| s.status == SignerStatus::Signed)
        .count() as i64
}

impl From<store::Contract> for ContractJson {
    fn from(k: store::Contract) -> Self {
        ContractJson {
            id: k.id,
            number: k.number,
            tenant: k.tenant,
            contract_type_id: k.contract_type_id,
            title: k.title,
            body: k.body,
            hash_alg: k.hash_alg,
            contract_hash: k.contract_hash,
            status: k.status.as_str().to_owned(),
            reject_reason: k.reject_reason,
            created_by: k.created_by,
            reviewed_by: k.reviewed_by,
            signed_count: signed_count(&k.signers),
            signers: k.signers.into_iter().map(SignerJson::from).collect(),
            created_at: ts(k.created_at),
            updated_at: ts(k.updated_at),
            reviewed_at: ts_opt(k.reviewed_at),
            ledger: None,
            invitation_links: Vec::new(),
        }
    }
}

/// A signer in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignerSummaryJson {
    pub index: i32,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub organisation: Option<String>,
    /// Outside parties: the e-mail address or phone number invited.
    pub invited: Option<String>,
    /// `pending`, `signed`, `refused`.
    pub status: String,
}

/// A contract in lists: without its body or signatures
/// (`GET /contracts/{id}` has them).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractSummaryJson {
    pub id: i64,
    pub number: String,
    pub tenant: String,
    pub contract_type_id: i64,
    pub title: String,
    /// The body's length in bytes (UTF-8).
    pub body_bytes: i64,
    pub hash_alg: String,
    pub contract_hash: String,
    pub status: String,
    pub reject_reason: Option<String>,
    pub created_by: i64,
    pub reviewed_by: Option<i64>,
    pub signers: Vec<SignerSummaryJson>,
    /// Signers who signed, of `signers`.
    pub signed_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub reviewed_at: Option<String>,
}

impl From<store::Contract> for ContractSummaryJson {
    fn from(k: store::Contract) -> Self {
        ContractSummaryJson {
            id: k.id,
            number: k.number,
            tenant: k.tenant,
            contract_type_id: k.contract_type_id,
            title: k.title,
            body_bytes: k.body_bytes,
            hash_alg: k.hash_alg,
            contract_hash: k.contract_hash,
            status: k.status.as_str().to_owned(),
            reject_reason: k.reject_reason,
            created_by: k.created_by,
            reviewed_by: k.reviewed_by,
            signed_count: signed_count(&k.signers),
            signers: k
                .signers
                .into_iter()
                .map(|s| SignerSummaryJson {
                    index: s.index,
                    user_id: s.user_id,
                    username: s.username,
                    organisation: s.organisation,
                    invited: s.invitation.and_then(|i| i.email.or(i.phone)),
                    status: s.status.as_str().to_owned(),
                })
                .collect(),
            created_at: ts(k.created_at),
            updated_at: ts(k.updated_at),
            reviewed_at: ts_opt(k.reviewed_at),
        }
    }
}

/// May `caller` read contract `k`: its bank (administrators: all), or one
/// of its signers (of any organisation, or an outside party)?
fn may_read(caller: &Caller, k: &store::Contract) -> bool {
    caller.can_read_tenant(&k.tenant) || k.signer(caller.id).is_some()
}

/// Load a contract the caller may read (403 otherwise), on the caller's
/// connection.
async fn load(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<store::Contract, ApiError> {
    let k = store::get(c, id).await?;
    if !may_read(caller, &k) {
        return Err(ApiError::forbidden("this contract belongs to another bank"));
    }
    Ok(k)
}

/// Load on a connection of its own, returned before the caller goes on.
async fn load_one(wf: &Workflow, caller: &Caller, id: i64) -> Result<store::Contract, ApiError> {
    let c = wf.db().await?;
    load(&c, caller, id).await
}

/// The answer of a change: the contract as the caller reads it now.
async fn answer(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<axum::Json<ContractJson>, ApiError> {
    Ok(axum::Json(load(c, caller, id).await?.into()))
}

/// A fresh invitation token: 32 random bytes as hex, and its SHA-256 (what
/// is stored).
fn invitation_token() -> (String, Vec<u8>) {
    let token = hex::encode(crate::random32());
    let hash = crate::sha256(token.as_bytes()).to_vec();
    (token, hash)
}

/// Start a contract (status `signing`). Signers may be users of other
/// organisations or outside parties invited by e-mail or phone: the
/// response carries their one-time invitation links (`invitation_links`),
/// and a `contract.invitation` event per link is queued for the
/// notification hooks.
#[utoipa::path(post, path = "/v1/contracts", request_body = NewContract,
    responses((status = 201, body = ContractJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Json(n): Json<NewContract>,
) -> Result<
    (
        StatusCode,
        [(axum::http::HeaderName, String); 1],
        axum::Json<ContractJson>,
    ),
    ApiError,
> {
    let tenant = caller.tenant()?.to_owned();
    let mut errs = BTreeMap::new();
    let parties = check_new_contract(&n, &mut errs);
    let mut c = wf.db().await?;
    let template = store::template_of(c.client(), n.contract_type_id)
        .await?
        .ok_or_else(|| ApiError::field("contract_type_id", "no such contract type"))?;
    let body = match render(&template, &n.variables, MAX_BODY_BYTES) {
        Ok(b) => Some(b),
        Err(RenderError(e)) => {
            errs.extend(e);
            None
        }
    };
    // Resolve the signers; invitations get their tokens.
    let mut ids: Vec<i64> = Vec::new();
    let mut invited: Vec<(usize, Party, String, Vec<u8>)> = Vec::new();
    for (i, p) in parties.iter().enumerate() {
        match p {
            Party::User {
                username,
                organisation,
            } => {
                let org = organisation.as_deref().unwrap_or(&tenant);
                match store::organisation_signer(c.client(), username, org).await? {
                    Some(uid) if ids.contains(&uid) => {
                        errs.insert(format!("signers[{i}]"), "listed twice".into());
                    }
                    Some(uid) => ids.push(uid),
                    None => {
                        errs.insert(
                            format!("signers[{i}]"),
                            if organisation.is_some() {
                                "no user of this organisation with this username".into()
                            } else {
                                "no user of this bank with this username".into()
                            },
                        );
                    }
                }
            }
            Party::Email(_) | Party::Phone(_) => {
                let (token, hash) = invitation_token();
                invited.push((i, p.clone(), token, hash));
            }
        }
    }
    let body = match body {
        Some(b) if errs.is_empty() => b,
        _ => return Err(ApiError::validation(errs)),
    };
    let alg = wf.evidence_alg();
    let hash = hex::encode(alg.hash(body.as_bytes()));
    let mut slots = Vec::with_capacity(parties.len());
    let (mut users, mut invites) = (ids.iter(), invited.iter());
    for p in &parties {
        slots.push(match p {
            Party::User { .. } => {
                store::NewSigner::User(*users.next().ok_or_else(ApiError::internal)?)
            }
            Party::Email(_) | Party::Phone(_) => {
                let (_, p, _, hash) = invites.next().ok_or_else(ApiError::internal)?;
                let (email, phone) = match p {
                    Party::Email(e) => (Some(e.as_str()), None),
                    Party::Phone(ph) => (None, Some(ph.as_str())),
                    Party::User { .. } => (None, None),
                };
                store::NewSigner::Invited {
                    email,
                    phone,
                    token_hash: hash,
                    ttl_s: INVITATION_TTL_S,
                }
            }
        });
    }
    let tx = c.transaction().await?;
    let id = store::create(
        &tx,
        &store::NewContract {
            tenant: &tenant,
            contract_type_id: n.contract_type_id,
            title: n.title.trim(),
            body: &body,
            hash_alg: alg.name(),
            contract_hash: &hash,
            created_by: caller.id,
        },
        &slots,
    )
    .await?;
    events::emit(
        &tx,
        Some(&tenant),
        "contract.created",
        serde_json::json!({"type": "contract", "id": id}),
    )
    .await?;
    let mut links = Vec::new();
    let expires_at =
        ts(time::OffsetDateTime::now_utc() + time::Duration::seconds(INVITATION_TTL_S));
    for (i, p, token, _) in &invited {
        let (email, phone) = match p {
            Party::Email(e) => (Some(e.clone()), None),
            Party::Phone(ph) => (None, Some(ph.clone())),
            Party::User { .. } => (None, None),
        };
        let mut link = InvitationLinkJson {
            index: *i as i32,
            email,
            phone,
            link: format!("/invitation#token={token}"),
            token: token.clone(),
            expires_at: expires_at.clone(),
            delivery: InvitationDelivery::None,
            delivery_note: String::new(),
        };
        // The event (webhooks, notification hooks) never carries the link:
        // webhook bodies are stored and sent to the bank's endpoint. The
        // link goes to the invitee only by the invitation mail or SMS
        // (queued here, in this transaction, while that channel is on) and
        // this response, which says which.
        events::emit(
            &tx,
            Some(&tenant),
            "contract.invitation",
            serde_json::json!({"type": "contract", "id": id, "index": link.index,
                "email": link.email, "phone": link.phone, "expires_at": link.expires_at}),
        )
        .await?;
        (link.delivery, link.delivery_note) = match (&link.email, &link.phone) {
            (Some(email), _) => {
                if crate::store::notify::invitation(&tx, email, id, &link.link).await? {
                    (
                        InvitationDelivery::Email,
                        "an invitation mail with the link is queued".into(),
                    )
                } else {
                    (
                        InvitationDelivery::None,
                        "no mail was sent (e-mail is off on this deployment): give the link to the invitee yourself".into(),
                    )
                }
            }
            (None, Some(phone)) => {
                if crate::store::notify::sms_invitation(&tx, phone, id, &link.link).await? {
                    (
                        InvitationDelivery::Sms,
                        "an SMS with the link is queued".into(),
                    )
                } else {
                    (
                        InvitationDelivery::None,
                        "no SMS was sent (no SMS gateway is configured): give the link to the invitee yourself".into(),
                    )
                }
            }
            (None, None) => (InvitationDelivery::None, "nothing to send to".into()),
        };
        links.push(link);
    }
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    let mut k: ContractJson = load(&c, &caller, id).await?.into();
    k.invitation_links = links;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, format!("/v1/contracts/{id}"))],
        axum::Json(k),
    ))
}

/// Details, with every signer's status and the ledger entry.
#[utoipa::path(get, path = "/v1/contracts/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ContractJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn get(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let k = load_one(&wf, &caller, id).await?;
    let sub = k.submission_id;
    let mut k: ContractJson = k.into();
    k.ledger = ledger_view(&wf, sub, format!("/v1/contracts/{id}/proof")).await?;
    Ok(axum::Json(k))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `signing`, `awaiting_review`, `approved`, `on_chain`, `refused`, `rejected`.
    #[param(pattern = "^(signing|awaiting_review|approved|on_chain|refused|rejected)$")]
    pub status: Option<String>,
    /// Exact number (1-64 characters, no control characters).
    #[param(min_length = 1, max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub number: Option<String>,
    /// The contract hash, hex.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub hash: Option<String>,
    /// `true`: only contracts awaiting the caller's own signature.
    pub awaiting_my_signature: Option<bool>,
    /// Items in the page (1-1000, default 100; "Paging").
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the contract with this id (the `Anchord-Next-After`
    /// header of the previous, full page).
    #[param(minimum = 1)]
    pub after: Option<i64>,
    /// Skip this many (default 0; kept for older clients, prefer `after`).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Contracts of the caller's bank and those the caller signs (of any
/// organisation; outside signers: theirs; administrators: all), without
/// bodies, newest first, in pages (`limit`, `after`; a full page names the
/// next cursor in `Anchord-Next-After`).
#[utoipa::path(get, path = "/v1/contracts", params(ListQuery), responses((status = 200, body = [ContractSummaryJson])))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrSigner>,
    Query(q): Query<ListQuery>,
) -> Result<crate::paging::Paged<ContractSummaryJson>, ApiError> {
    let (tenant, signer) = match caller.role {
        Role::Admin => (None, None),
        Role::Signer => (None, Some(caller.id)),
        _ => (Some(caller.tenant()?.to_owned()), Some(caller.id)),
    };
    crate::error::one_of("status", &q.status, &status::strs(ContractStatus::ALL))?;
    crate::error::hex64("hash", &q.hash)?;
    if let Some(n) = &q.number
        && (n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            "number",
            "1-64 characters, no control characters (a contract number)",
        ));
    }
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    crate::error::in_range("offset", q.offset, 0, i64::MAX)?;
    let pending_signature = q.awaiting_my_signature.unwrap_or(false);
    let c = wf.db().await?;
    let items = store::list(
        c.client(),
        &store::Filter {
            tenant: tenant.as_deref(),
            signer: if pending_signature {
                Some(caller.id)
            } else {
                signer
            },
            status: q.status.as_deref().and_then(ContractStatus::parse),
            number: q.number.as_deref(),
            hash: q.hash.as_deref(),
            pending_signature,
            limit: page.limit,
            offset: q.offset.unwrap_or(0),
            after: page.after,
        },
    )
    .await?
    .into_iter()
    .map(ContractSummaryJson::from)
    .collect();
    Ok(crate::paging::Paged::new(items, page, |c| c.id))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Hex Ed25519 signature over the signer's statement (client custody;
    /// docs/workflow-api.md). Omit with a platform-held key: the platform
    /// signs the same statement.
    pub signature: Option<String>,
}

/// The statement `signer` signs on `k` with `public_key` (hex).
fn statement_for(
    k: &store::Contract,
    signer: &store::Signer,
    public_key: &str,
) -> Result<String, ApiError> {
    signature_statement(&StatementFields {
        contract_id: k.id,
        contract_number: &k.number,
        tenant: &k.tenant,
        hash_alg: &k.hash_alg,
        contract_hash: &k.contract_hash,
        signer_index: signer.index,
        signer_user_id: signer.user_id.unwrap_or_default(),
        signer_username: signer.username.as_deref().unwrap_or_default(),
        public_key,
    })
    .ok_or_else(|| {
        tracing::error!(
            contract = k.id,
            "a contract field cannot be written in a statement"
        );
        ApiError::internal()
    })
}

/// Sign (a pending signer, of any organisation or an outside party): the
/// signature is over the caller's own statement for this contract
/// (docs/workflow-api.md).
#[utoipa::path(post, path = "/v1/contracts/{id}/sign", params(("id" = i64, Path)), request_body = SignRequest,
    responses((status = 200, body = ContractJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, description = "the signature does not verify", body = crate::error::ErrorBody)))]
pub async fn sign(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Signers>,
    Path(id): Path<i64>,
    body: Result<Json<SignRequest>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let mut c = wf.db().await?;
    let k = load(&c, &caller, id).await?;
    let Some(me) = k.signer(caller.id) else {
        return Err(ApiError::forbidden("you are not a signer of this contract"));
    };
    // The body only now: the caller may touch the record (authz::Require).
    let Json(s) = body?;
    if k.status != ContractStatus::Signing {
        return Err(status::conflict::<ContractStatus, tokio_postgres::Client>(
            &c,
            id,
            "signing",
            &[ContractStatus::Signing],
        )
        .await);
    }
    if me.status != SignerStatus::Pending {
        return Err(ApiError::invalid_state(format!(
            "your signature is already {}",
            me.status
        )));
    }
    let key = store::key_of(c.client(), caller.id).await?.ok_or_else(|| {
        ApiError::invalid_state("register a signing key first (PUT /v1/me/signing-key)")
    })?;
    let pk: [u8; 32] = key
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::internal())?;
    let statement = statement_for(&k, me, &hex::encode(pk))?;
    let signature: Vec<u8> = if key.custody == "platform" {
        if s.signature.is_some() {
            return Err(ApiError::field(
                "signature",
                "your key is held by the platform, which signs for you: omit `signature`",
            ));
        }
        let kek = platform_kek(&wf)?;
        let sealed = key.sealed_seed.clone().unwrap_or_default();
        kek.sign(caller.id, &pk, &sealed, statement.as_bytes())
            .map_err(|e| match e {
                crate::keyseal::SignError::Open(crate::keyseal::OpenError::OtherKek { .. }) => {
                    tracing::error!(user_id = caller.id, error = %e, "platform-held signing key");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not_configured",
                        "your platform-held key was sealed under another key-encryption key than the configured one",
                    )
                }
                e => {
                    tracing::error!(user_id = caller.id, error = %e, "platform-held signing key does not sign");
                    ApiError::internal()
                }
            })?
            .to_vec()
    } else {
        let vk = VerifyingKey::from_bytes(&pk).map_err(|_| ApiError::internal())?;
        let sig_hex = s.signature.as_deref().unwrap_or_default();
        if hex_bytes::<64>(sig_hex).is_none() {
            return Err(ApiError::field(
                "signature",
                "a hex Ed25519 signature (128 hex digits) over your signature statement",
            ));
        }
        if !verify_hex(&vk, &statement, sig_hex) {
            return Err(ApiError::field(
                "signature",
                "does not verify against your registered public key over your statement for this contract (anchord-contract-signature/v1: contract, hash, signer, key)",
            ));
        }
        hex_bytes::<64>(sig_hex)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    };
    let tx = c.transaction().await?;
    let signed = store::sign(
        &tx,
        Actor::user(&caller),
        id,
        caller.id,
        &store::Signature {
            custody: &key.custody,
            public_key: &key.public_key,
            signature: &signature,
            statement: &statement,
        },
    )
    .await?;
    if signed == store::Signed::AllSigned {
        events::emit(
            &tx,
            Some(&k.tenant),
            "contract.awaiting_review",
            serde_json::json!({"type": "contract", "id": id, "number": k.number}),
        )
        .await?;
    }
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

/// Refuse to sign, with a reason (a pending signer): the contract is `refused`.
#[utoipa::path(post, path = "/v1/contracts/{id}/refuse", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = ContractJson), (status = 409, body = crate::error::ErrorBody)))]
pub async fn refuse(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Signers>,
    Path(id): Path<i64>,
    body: Result<Json<Reason>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let mut c = wf.db().await?;
    let k = load(&c, &caller, id).await?;
    if k.signer(caller.id).is_none() {
        return Err(ApiError::forbidden("you are not a signer of this contract"));
    }
    // The body only now: the caller may touch the record (authz::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let tx = c.transaction().await?;
    store::refuse(&tx, Actor::user(&caller), id, caller.id, reason_text).await?;
    events::emit(
        &tx,
        Some(&k.tenant),
        "contract.refused",
        serde_json::json!({"type": "contract", "id": id, "by": caller.username}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

fn review_guard(caller: &Caller, k: &store::Contract) -> Result<(), ApiError> {
    if caller.tenant.as_deref() != Some(k.tenant.as_str()) {
        return Err(ApiError::forbidden(
            "reviewers review only their own bank's records",
        ));
    }
    if k.created_by == caller.id || k.signer(caller.id).is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "self_approval",
            "nobody reviews a contract they started or signed",
        ));
    }
    Ok(())
}

/// Every signature with the exact statement it covers, as committed in the
/// ledger record.
fn signatures_record(k: &store::Contract) -> serde_json::Value {
    serde_json::Value::Array(
        k.signers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "index": s.index, "user_id": s.user_id,
                    "username": s.username, "custody": s.custody,
                    "public_key": s.public_key.as_ref().map(hex::encode),
                    "signature": s.signature.as_ref().map(hex::encode),
                    "statement": s.statement,
                })
            })
            .collect(),
    )
}

/// Approve (a reviewer of the bank, not the creator or a signer): the
/// contract hash goes to the ledger through the evidence topic.
#[utoipa::path(post, path = "/v1/contracts/{id}/approve", params(("id" = i64, Path)),
    responses((status = 200, body = ContractJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn approve(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Reviewer>,
    Path(id): Path<i64>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let mut c = wf.db().await?;
    let k = load(&c, &caller, id).await?;
    review_guard(&caller, &k)?;
    let signatures = signatures_record(&k);
    let sig_digest = hex::encode(crate::sha256(
        serde_json_canonicalizer::to_string(&signatures)
            .unwrap_or_default()
            .as_bytes(),
    ));
    let tx = c.transaction().await?;
    store::approve(&tx, Actor::user(&caller), id, caller.id).await?;
    let sub = evidence::enqueue(
        &tx,
        &NewSubmission {
            kind: "contract",
            object_id: id,
            tenant: k.tenant.clone(),
            hash_alg: if k.hash_alg == "sm3" { "sm3" } else { "sha256" },
            hash: k.contract_hash.clone(),
            record: serde_json::json!({
                "source": "anchord-workflow",
                "kind": "contract",
                "number": k.number,
                "signers": k.signers.len(),
                // Each signature with the exact statement it covers: the
                // commitment binds them to the ledger entry.
                "signatures": signatures,
                "signatures_sha256": sig_digest,
            }),
        },
    )
    .await?;
    store::set_submission(&tx, id, sub).await?;
    events::emit(
        &tx,
        Some(&k.tenant),
        "contract.approved",
        serde_json::json!({"type": "contract", "id": id, "number": k.number}),
    )
    .await?;
    tx.commit().await?;
    wf.submissions_kick.notify_one();
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

/// Reject with a reason (a reviewer of the bank).
#[utoipa::path(post, path = "/v1/contracts/{id}/reject", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = ContractJson)))]
pub async fn reject(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Reviewer>,
    Path(id): Path<i64>,
    body: Result<Json<Reason>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let mut c = wf.db().await?;
    let k = load(&c, &caller, id).await?;
    review_guard(&caller, &k)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let tx = c.transaction().await?;
    store::reject(&tx, Actor::user(&caller), id, caller.id, reason_text).await?;
    events::emit(
        &tx,
        Some(&k.tenant),
        "contract.rejected",
        serde_json::json!({"type": "contract", "id": id, "reason": reason_text}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

/// The contract's proof bundle, once sealed.
#[utoipa::path(get, path = "/v1/contracts/{id}/proof", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 409, body = crate::error::ErrorBody)))]
pub async fn proof(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<anchord_core::bundle::Bundle>, ApiError> {
    let k = load_one(&wf, &caller, id).await?;
    bundle_of(&wf, k.submission_id).await
}

/// The contract's preservation certificate (电子数据保全证书, PDF), once
/// sealed: the verifier's certificate of its ledger entry.
#[utoipa::path(get, path = "/v1/contracts/{id}/certificate", params(("id" = i64, Path)),
    responses((status = 200, description = "the certificate", content_type = "application/pdf"),
              (status = 409, description = "not sealed yet", body = crate::error::ErrorBody),
              (status = 503, description = "no certificate font on this server", body = crate::error::ErrorBody)))]
pub async fn certificate(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    let k = load_one(&wf, &caller, id).await?;
    let axum::Json(bundle) = bundle_of(&wf, k.submission_id).await?;
    contract_pdf(&wf, bundle, &k).await
}

/// The verifier's certificate of the contract's ledger entry, continued
/// with every signer's time and key (fingerprint) and how to check the
/// signatures.
async fn contract_pdf(
    wf: &Workflow,
    bundle: anchord_core::bundle::Bundle,
    k: &store::Contract,
) -> Result<axum::response::Response, ApiError> {
    use anchord_verifier::certificate::IssueError;
    use axum::response::IntoResponse as _;
    let url = format!(
        "{}/{}",
        wf.config.proof_url.trim_end_matches('/'),
        hex::encode(&bundle.entry.evidence_hash)
    );
    let bytes = wf
        .certificates
        .pdf_with(bundle, url, certificate_signer_lines(k))
        .await
        .map_err(|e| match e {
            IssueError::FontUnavailable(e) => {
                tracing::error!(error = %e, "loading the certificate font (workflow.certificate_font)");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_configured",
                    "certificates are not available on this server: its CJK font (workflow.certificate_font) cannot be loaded",
                )
            }
            // The deployment's own bundle not verifying is a server fault.
            IssueError::Render(e) | IssueError::NotVerified(e) => {
                tracing::error!(error = %e, "rendering a contract certificate");
                ApiError::internal()
            }
        })?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/pdf".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                crate::files::content_disposition(&format!("contract-{}-certificate.pdf", k.id)),
            ),
        ],
        bytes,
    )
        .into_response())
}

// ---------------------------------------------------------------------------
// Invitations of outside parties

/// An invitation token, sent in a body (never in a URL).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    /// The 64 hex digits of the invitation link.
    pub token: String,
}

/// What an invitation opens, before it is redeemed.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreviewJson {
    pub contract_id: i64,
    pub number: String,
    pub title: String,
    /// The initiating bank (organisation).
    pub tenant: String,
    /// The invitee's slot.
    pub index: i32,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Register as an outside signer with an invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRegistration {
    pub token: String,
    /// 1-64 of letters, digits, `.`, `_`, `@`, `-`, starting with a letter or
    /// digit.
    pub username: String,
    pub password: String,
}

/// The token's hash, or a field error (any malformed token is simply
/// unknown).
fn token_hash(token: &str) -> Result<Vec<u8>, ApiError> {
    if hex_bytes::<32>(token).is_none() || token.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::field(
            "token",
            "the 64 lowercase hex digits of the invitation link",
        ));
    }
    Ok(crate::sha256(token.as_bytes()).to_vec())
}

/// What an invitation opens (no login): the contract's number, title and
/// bank, and the slot. 404 for an unknown token, 409 for a used or expired
/// one.
#[utoipa::path(post, path = "/v1/invitations/preview", request_body = InvitationToken, security(()),
    responses((status = 200, body = InvitationPreviewJson), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "used or expired", body = crate::error::ErrorBody)))]
pub async fn invitation_preview(
    State(wf): State<Arc<Workflow>>,
    Json(t): Json<InvitationToken>,
) -> Result<axum::Json<InvitationPreviewJson>, ApiError> {
    let hash = token_hash(&t.token)?;
    let _slot = invitation_slot(&wf).await?;
    let c = wf.db().await?;
    let inv = store::invitation(c.client(), &hash).await?;
    let k = store::get(c.client(), inv.contract_id).await?;
    Ok(axum::Json(InvitationPreviewJson {
        contract_id: k.id,
        number: k.number,
        title: k.title,
        tenant: k.tenant,
        index: inv.index,
        email: inv.email,
        phone: inv.phone,
    }))
}

/// The invitee registers as an outside signer (role `signer`: they see and
/// sign only the contracts they are bound to) and the invitation's slot
/// becomes theirs; the link then no longer works. They log in with `POST
/// /v1/auth/login`, register a signing key and sign or refuse.
#[utoipa::path(post, path = "/v1/invitations/register", request_body = InvitationRegistration, security(()),
    responses((status = 201, body = ContractJson), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "used or expired, being redeemed by a concurrent registration, or the username is taken", body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn invitation_register(
    State(wf): State<Arc<Workflow>>,
    Json(r): Json<InvitationRegistration>,
) -> Result<(StatusCode, axum::Json<ContractJson>), ApiError> {
    let hash = token_hash(&r.token)?;
    if !statement_token(&r.username)
        || r.username.chars().count() > 64
        || !r.username.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(ApiError::field(
            "username",
            "1-64 characters of letters, digits, . _ @ -, starting with a letter or digit",
        ));
    }
    // Claim the invitation first: an unknown, used, expired or already
    // claimed token is refused here, before the password's strength is
    // estimated or it is hashed (of registrations racing on one link, only
    // the claimant spends that work).
    {
        let _slot = invitation_slot(&wf).await?;
        let c = wf.db().await?;
        store::claim_invitation(c.client(), &hash, INVITATION_CLAIM_S).await?;
    }
    let registered = register_claimed(&wf, &hash, &r).await;
    if registered.is_err() {
        // Free the claim for the next attempt (a weak password, a taken
        // username); when this fails too, the claim lapses by itself.
        let freed = async {
            let c = wf.db().await?;
            store::release_invitation(c.client(), &hash).await?;
            Ok::<_, ApiError>(())
        };
        if let Err(e) = freed.await {
            tracing::warn!(error = ?e, "releasing an invitation's claim");
        }
    }
    Ok((StatusCode::CREATED, axum::Json(registered?)))
}

/// How long a registration holds the invitation it claimed, in seconds
/// (the password's check and hash and one transaction; a crashed
/// registration's claim lapses after it).
pub const INVITATION_CLAIM_S: f64 = 120.0;

/// How long a public invitation request waits for one of the pool
/// connections those routes may use before it is answered 429.
const INVITATION_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The `Retry-After` of an invitation request that found no slot, seconds.
const INVITATION_RETRY_AFTER_S: u64 = 2;

/// A slot of the public invitation routes' share of the pool
/// (`Workflow::invitation_slots`, one connection fewer than the pool): held
/// while such a request uses a connection, so a flood of them never takes
/// the last one from signed-in users; 429 `rate_limited` after
/// [`INVITATION_SLOT_WAIT`].
async fn invitation_slot(wf: &Workflow) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    match tokio::time::timeout(INVITATION_SLOT_WAIT, wf.invitation_slots.acquire()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(ApiError::rate_limited(
            "too many invitation requests at once; retry in a few seconds",
            INVITATION_RETRY_AFTER_S,
        )),
    }
}

/// The claimed registration: the password checked and hashed (no
/// connection held), then the account and the slot in one transaction.
async fn register_claimed(
    wf: &Workflow,
    hash: &[u8],
    r: &InvitationRegistration,
) -> Result<ContractJson, ApiError> {
    if let Err(why) = wf.passwords.check(&r.password, &r.username) {
        return Err(ApiError::field("password", why));
    }
    let phc = wf.passwords.hash(&r.password).await?;
    // No invitation slot here: only a claimant gets this far (one per live
    // token at a time), and it must not queue behind a flood it won.
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let uid = store::create_outside_signer(&tx, &r.username, &phc)
        .await?
        .ok_or_else(|| ApiError::conflict("this username is taken"))?;
    let inv = store::redeem(&tx, hash, uid).await?;
    crate::audit::append_in(
        &tx,
        Some(uid),
        &r.username,
        "contract.invitation_redeemed",
        &format!("contract/{}", inv.contract_id),
        "ok",
        &format!("slot {} (a new outside signer)", inv.index),
    )
    .await?;
    tx.commit().await?;
    // The new signer's slot is bound: theirs to read.
    Ok(store::get(c.client(), inv.contract_id).await?.into())
}

/// A logged-in user (an outside signer with an account, or a user of any
/// organisation) takes the invitation's slot; the link then no longer
/// works.
#[utoipa::path(post, path = "/v1/invitations/accept", request_body = InvitationToken,
    responses((status = 200, body = ContractJson), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "used or expired", body = crate::error::ErrorBody)))]
pub async fn invitation_accept(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Signers>,
    Json(t): Json<InvitationToken>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let hash = token_hash(&t.token)?;
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let inv = store::redeem(&tx, &hash, caller.id).await?;
    // The link is the outside party's: the initiating bank (which is shown
    // it to pass on) cannot take the slot itself, and sign in the invitee's
    // place (security review H19). Its own users are named signers instead.
    let tenant = store::get(&*tx, inv.contract_id).await?.tenant;
    if caller.tenant.as_deref() == Some(tenant.as_str()) {
        return Err(ApiError::forbidden(
            "this invitation is for a party outside the initiating bank; name your bank's users as signers instead",
        ));
    }
    crate::audit::append_in(
        &tx,
        Some(caller.id),
        &caller.username,
        "contract.invitation_redeemed",
        &format!("contract/{}", inv.contract_id),
        "ok",
        &format!("slot {}", inv.index),
    )
    .await?;
    tx.commit().await?;
    answer(&c, &caller, inv.contract_id).await
}

// ---------------------------------------------------------------------------
// Contract certificates: every signer with time and key

/// A signer as the contract certificate lists them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertSignerJson {
    pub index: i32,
    pub username: Option<String>,
    /// The signer's organisation; `null` for an outside party.
    pub organisation: Option<String>,
    /// Outside parties: the e-mail address or phone number invited.
    pub invited: Option<String>,
    /// `pending`, `signed`, `refused`.
    pub status: String,
    pub signed_at: Option<String>,
    /// `client` (the signer's own key) or `platform` (platform custody).
    pub custody: Option<String>,
    /// Hex Ed25519 public key.
    pub public_key: Option<String>,
    /// `SHA256:` and the hex SHA-256 of the 32 public-key bytes.
    pub key_fingerprint: Option<String>,
    pub signature: Option<String>,
    /// The exact statement signed.
    pub statement: Option<String>,
    /// The signature verifies over the statement under the key (checked
    /// now, strictly).
    pub signature_verified: bool,
}

/// The contract certificate: the contract, each signer with time and key,
/// the ledger entry, and how to verify all of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractCertificateJson {
    pub number: String,
    pub title: String,
    /// The initiating bank (organisation).
    pub tenant: String,
    pub status: String,
    pub hash_alg: String,
    pub contract_hash: String,
    pub signers: Vec<CertSignerJson>,
    pub reviewed_at: Option<String>,
    /// Where the contract stands in the ledger, with its anchors (once
    /// approved).
    pub ledger: Option<LedgerJson>,
    /// The commands that check it: the proof bundle and contract text
    /// with `anchord verify`, and each signature with OpenSSL.
    pub verification: Vec<String>,
}

/// `SHA256:<hex>` of a public key's bytes.
pub fn key_fingerprint(public_key: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(crate::sha256(public_key)))
}

fn cert_signers(k: &store::Contract) -> Vec<CertSignerJson> {
    k.signers
        .iter()
        .map(|s| {
            let verified = match (&s.public_key, &s.signature, &s.statement) {
                (Some(pk), Some(sig), Some(st)) => parse_public_key(&hex::encode(pk))
                    .is_some_and(|vk| verify_hex(&vk, st, &hex::encode(sig))),
                _ => false,
            };
            CertSignerJson {
                index: s.index,
                username: s.username.clone(),
                organisation: s.organisation.clone(),
                invited: s
                    .invitation
                    .as_ref()
                    .and_then(|i| i.email.clone().or_else(|| i.phone.clone())),
                status: s.status.as_str().to_owned(),
                signed_at: ts_opt(s.signed_at),
                custody: s.custody.clone(),
                public_key: s.public_key.as_ref().map(hex::encode),
                key_fingerprint: s.public_key.as_deref().map(key_fingerprint),
                signature: s.signature.as_ref().map(hex::encode),
                statement: s.statement.clone(),
                signature_verified: verified,
            }
        })
        .collect()
}

fn verification_commands(k: &store::Contract) -> Vec<String> {
    vec![
        format!(
            "anchord verify --trust trust.toml --bundle {n}-bundle.json --file {n}-contract.txt --online   # {n}-contract.txt: the contract text (body), UTF-8, byte for byte; the bundle: GET /v1/contracts/{id}/proof",
            n = k.number,
            id = k.id
        ),
        "openssl pkeyutl -verify -pubin -inkey signer-<index>.pem -rawin -in statement-<index>.txt -sigfile signature-<index>.bin   # per signer: statement-<index>.txt is `statement` byte for byte, signature-<index>.bin the signature's 64 bytes, signer-<index>.pem the Ed25519 public key (SubjectPublicKeyInfo: hex 302a300506032b6570032100 then the 32 key bytes)".to_owned(),
    ]
}

/// The contract certificate as JSON: every signer with time, key
/// (fingerprint) and signature checked now, the ledger entry and anchors,
/// and the verification commands (the contract's bank, its signers).
#[utoipa::path(get, path = "/v1/contracts/{id}/certificate.json", params(("id" = i64, Path)),
    responses((status = 200, body = ContractCertificateJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn certificate_json(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<ContractCertificateJson>, ApiError> {
    let k = load_one(&wf, &caller, id).await?;
    let ledger = ledger_view(&wf, k.submission_id, format!("/v1/contracts/{id}/proof")).await?;
    Ok(axum::Json(ContractCertificateJson {
        signers: cert_signers(&k),
        verification: verification_commands(&k),
        number: k.number,
        title: k.title,
        tenant: k.tenant,
        status: k.status.as_str().to_owned(),
        hash_alg: k.hash_alg,
        contract_hash: k.contract_hash,
        reviewed_at: ts_opt(k.reviewed_at),
        ledger,
    }))
}

/// The certificate's lines about the signers (after the ledger part).
pub fn certificate_signer_lines(k: &store::Contract) -> Vec<(f32, String)> {
    let mut l = vec![
        (9.0, String::new()),
        (11.0, format!("合同 Contract {}  {}", k.number, k.title)),
        (9.0, format!("发起机构 Initiator: {}", k.tenant)),
        (
            9.0,
            format!("合同哈希 Hash ({}): {}", k.hash_alg, k.contract_hash),
        ),
        (11.0, "签署方 Signers:".to_owned()),
    ];
    for s in cert_signers(k) {
        let who = match (&s.username, &s.organisation, &s.invited) {
            (Some(u), Some(o), _) => format!("{u} ({o})"),
            (Some(u), None, Some(i)) => format!("{u} (受邀 invited {i})"),
            (Some(u), None, None) => u.clone(),
            (None, _, Some(i)) => format!("受邀 invited {i}"),
            (None, _, None) => "-".to_owned(),
        };
        l.push((
            9.0,
            format!(
                "  {}. {who}  {}  {}",
                s.index + 1,
                s.status,
                s.signed_at.as_deref().unwrap_or("-")
            ),
        ));
        if let Some(fp) = &s.key_fingerprint {
            l.push((
                8.0,
                format!(
                    "     密钥 key {} {}{}",
                    s.custody.as_deref().unwrap_or("-"),
                    fp,
                    if s.signature_verified {
                        "  签名有效 signature verified"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    l.push((9.0, "签名核验 Verify each signature:".to_owned()));
    l.push((
        8.0,
        "  openssl pkeyutl -verify -pubin -inkey signer.pem -rawin -in statement.txt -sigfile signature.bin".to_owned(),
    ));
    l.push((
        8.0,
        format!(
            "  (statements, keys, signatures: GET /v1/contracts/{}/certificate.json)",
            k.id
        ),
    ));
    l
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_once_in_order() {
        assert_eq!(
            placeholders("借款人 {{borrower}} 向 {{lender}} 借款 {{amount}} 元，{{borrower}} 签字"),
            vec!["borrower", "lender", "amount"]
        );
        assert!(placeholders("no placeholders {{").is_empty());
        assert_eq!(
            placeholders("{{ a {{b}} {{ c }} {{d e}} {{}}"),
            vec!["b", "c"]
        );
        assert_eq!(placeholders("{{借款人}}"), vec!["借款人"]);
    }

    #[test]
    fn rendering_is_one_pass_of_the_templates_own_placeholders() {
        let vars = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        // A value naming a placeholder stays literal.
        assert_eq!(
            render(
                "A {{a}} B {{b}}",
                &vars(&[("a", "{{b}}{{b}}"), ("b", "x")]),
                1000
            )
            .unwrap(),
            "A {{b}}{{b}} B x"
        );
        // Unknown and missing variables are named.
        let e = render("{{a}}", &vars(&[("a", "1"), ("zz", "2")]), 1000).unwrap_err();
        assert!(e.0.contains_key("variables.zz"), "{e:?}");
        let e = render("{{a}} {{b}}", &vars(&[("a", "1")]), 1000).unwrap_err();
        assert!(e.0.contains_key("variables.b"), "{e:?}");
        // The size is checked before anything is built.
        let e = render("{{a}}{{a}}{{a}}", &vars(&[("a", "0123456789")]), 29).unwrap_err();
        assert!(e.0["variables"].contains("30 bytes"), "{e:?}");
        assert_eq!(
            render("{{a}}{{a}}{{a}}", &vars(&[("a", "0123456789")]), 30)
                .unwrap()
                .len(),
            30
        );
    }
}
