//! Multi-party e-contracts.
//!
//! A bank user starts a contract from a contract type (template text with
//! `{{variable}}` placeholders) and names the signers (users of the same
//! bank). The template is filled in one pass: each of its own placeholders
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
//! refused) or `rejected` (the reviewer); every transition is guarded in SQL.

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
use crate::status::{self, Actor, Change, ContractStatus, SignerStatus, Status};
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
    let r = c
        .query_one(
            "INSERT INTO workflow.contract_types (name, template_text) VALUES ($1, $2) RETURNING id, created_at",
            &[&t.name.trim(), &t.template_text],
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ContractTypeJson {
            id: r.get(0),
            name: t.name.trim().into(),
            variables: placeholders(&t.template_text),
            template_text: t.template_text,
            created_at: ts(r.get(1)),
        }),
    ))
}

/// Contract types (without their template text).
#[utoipa::path(get, path = "/v1/contract-types", responses((status = 200, body = [ContractTypeSummaryJson])))]
pub async fn list_types(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
) -> Result<axum::Json<Vec<ContractTypeSummaryJson>>, ApiError> {
    let c = wf.db().await?;
    let rows = c
        .query(
            "SELECT id, name, template_text, created_at FROM workflow.contract_types
              WHERE deleted_at IS NULL ORDER BY id",
            &[],
        )
        .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| {
                let text: &str = r.get(2);
                ContractTypeSummaryJson {
                    id: r.get(0),
                    name: r.get(1),
                    variables: placeholders(text),
                    template_chars: text.chars().count() as i64,
                    created_at: ts(r.get(3)),
                }
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
    let r = c
        .query_opt(
            "SELECT id, name, template_text, created_at FROM workflow.contract_types
              WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("contract type"))?;
    let text: String = r.get(2);
    Ok(axum::Json(ContractTypeJson {
        id: r.get(0),
        name: r.get(1),
        variables: placeholders(&text),
        template_text: text,
        created_at: ts(r.get(3)),
    }))
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
    Require(caller, _): Require<roles::Bank>,
) -> Result<(StatusCode, axum::Json<ChallengeJson>), ApiError> {
    let challenge = crate::random32();
    let c = wf.db().await?;
    let r = c
        .query_one(
            "INSERT INTO workflow.signing_key_challenges (user_id, challenge, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (user_id) DO UPDATE SET challenge = $2, expires_at = now() + make_interval(secs => $3)
             RETURNING expires_at",
            &[&caller.id, &challenge.as_slice(), &(CHALLENGE_TTL_S as f64)],
        )
        .await?;
    let hex_challenge = hex::encode(challenge);
    Ok((
        StatusCode::CREATED,
        axum::Json(ChallengeJson {
            statement_template: format!(
                "{REGISTRATION_DOMAIN}\nuser-id {}\nusername {}\npublic-key <public-key>\nchallenge {hex_challenge}\n",
                caller.id, caller.username
            ),
            challenge: hex_challenge,
            expires_at: ts(r.get(0)),
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

/// Register (or replace) the caller's signing key: a client-held key with
/// a proof of possession, or a platform-held one. A key registered to (or
/// used by) another user answers 409.
#[utoipa::path(put, path = "/v1/me/signing-key", request_body = SigningKeyRequest,
    responses((status = 200, body = SigningKeyJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn register_key(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
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
        let used = tx
            .execute(
                "DELETE FROM workflow.signing_key_challenges
                  WHERE user_id = $1 AND challenge = $2 AND expires_at > now()",
                &[&caller.id, &ch.as_slice()],
            )
            .await?;
        if used == 0 {
            return Err(ApiError::field(
                "challenge",
                "unknown, already used or expired: request a new one (POST /v1/me/signing-key/challenge)",
            ));
        }
    }
    let used_elsewhere = tx
        .query_opt(
            "SELECT 1 FROM workflow.contract_signers WHERE public_key = $1 AND user_id <> $2 LIMIT 1",
            &[&public.as_slice(), &caller.id],
        )
        .await?
        .is_some();
    if used_elsewhere {
        return Err(ApiError::conflict(
            "this public key has signed for another user; keys are not shared",
        ));
    }
    let (pop_statement, pop_signature) = pop.unzip();
    let r = tx
        .execute(
            "INSERT INTO workflow.signing_keys
                 (user_id, custody, public_key, platform_seed_sealed, pop_statement, pop_signature)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id) DO UPDATE SET custody = $2, public_key = $3, platform_seed_sealed = $4,
                 pop_statement = $5, pop_signature = $6, created_at = now()",
            &[
                &caller.id,
                &k.custody,
                &public.as_slice(),
                &seed,
                &pop_statement,
                &pop_signature,
            ],
        )
        .await;
    match r {
        Ok(_) => {}
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            return Err(ApiError::conflict(
                "this public key is registered to another user; keys are not shared",
            ));
        }
        Err(e) => return Err(e.into()),
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    pub contract_type_id: i64,
    pub title: String,
    /// Values of the template's placeholders: exactly the template's
    /// placeholders, each 1-2000 characters of literal text.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Usernames of the signers (users of the same bank), in signing order.
    pub signers: Vec<String>,
}

/// Check a new contract's own fields (not those that need the database):
/// field-level messages into `errs`.
pub fn check_new_contract(n: &NewContract, errs: &mut BTreeMap<String, String>) {
    if n.title.trim().is_empty() || n.title.chars().count() > 200 {
        errs.insert("title".into(), "1-200 characters".into());
    }
    if n.variables.len() > MAX_PLACEHOLDERS {
        errs.insert(
            "variables".into(),
            format!("at most {MAX_PLACEHOLDERS} variables"),
        );
    }
    if n.signers.is_empty() || n.signers.len() > 20 {
        errs.insert("signers".into(), "1 to 20 signers".into());
    }
    for (i, name) in n.signers.iter().enumerate() {
        if name.is_empty() || name.chars().count() > 64 {
            errs.insert(format!("signers[{i}]"), "a username".into());
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignerJson {
    pub index: i32,
    pub user_id: i64,
    pub username: String,
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractJson {
    pub id: i64,
    pub number: String,
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
    pub created_at: String,
    pub updated_at: String,
    pub reviewed_at: Option<String>,
    pub ledger: Option<LedgerJson>,
}

/// A signer in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignerSummaryJson {
    pub index: i32,
    pub user_id: i64,
    pub username: String,
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
    pub created_at: String,
    pub updated_at: String,
    pub reviewed_at: Option<String>,
}

const CONTRACT_COLUMNS: &str =
    "id, number, tenant, contract_type_id, title, body, hash_alg, contract_hash, status,
    reject_reason, created_by, reviewed_by, created_at, updated_at, reviewed_at, submission_id";

/// Load a contract the caller may read (403 otherwise), on the caller's
/// connection.
async fn load(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<(ContractJson, Option<i64>), ApiError> {
    let r = c
        .query_opt(
            &format!("SELECT {CONTRACT_COLUMNS} FROM workflow.contracts WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("contract"))?;
    let signers: Vec<SignerJson> = c
        .query(
            "SELECT s.idx, s.user_id, u.username, s.status, s.custody, s.public_key, s.signature,
                    s.refuse_reason, s.invited_at, s.signed_at, s.refused_at, s.statement
               FROM workflow.contract_signers s JOIN workflow.users u ON u.id = s.user_id
              WHERE s.contract_id = $1 ORDER BY s.idx",
            &[&id],
        )
        .await?
        .iter()
        .map(|s| {
            let custody: Option<String> = s.get(4);
            SignerJson {
                index: s.get(0),
                user_id: s.get(1),
                username: s.get(2),
                status: s.get(3),
                custody_statement: (custody.as_deref() == Some("platform"))
                    .then_some(PLATFORM_CUSTODY_STATEMENT),
                custody,
                public_key: s.get::<_, Option<Vec<u8>>>(5).map(hex::encode),
                signature: s.get::<_, Option<Vec<u8>>>(6).map(hex::encode),
                refuse_reason: s.get(7),
                invited_at: ts(s.get(8)),
                signed_at: ts_opt(s.get(9)),
                refused_at: ts_opt(s.get(10)),
                statement: s.get(11),
            }
        })
        .collect();
    let tenant: String = r.get(2);
    let is_signer = signers.iter().any(|s| s.user_id == caller.id);
    if !caller.can_read_tenant(&tenant) && !is_signer {
        return Err(ApiError::forbidden("this contract belongs to another bank"));
    }
    Ok((
        ContractJson {
            id: r.get(0),
            number: r.get(1),
            tenant,
            contract_type_id: r.get(3),
            title: r.get(4),
            body: r.get(5),
            hash_alg: r.get(6),
            contract_hash: r.get(7),
            status: r.get(8),
            reject_reason: r.get(9),
            created_by: r.get(10),
            reviewed_by: r.get(11),
            signers,
            created_at: ts(r.get(12)),
            updated_at: ts(r.get(13)),
            reviewed_at: ts_opt(r.get(14)),
            ledger: None,
        },
        r.get(15),
    ))
}

/// Load on a connection of its own, returned before the caller goes on.
async fn load_one(
    wf: &Workflow,
    caller: &Caller,
    id: i64,
) -> Result<(ContractJson, Option<i64>), ApiError> {
    let c = wf.db().await?;
    load(&c, caller, id).await
}

/// Start a contract (status `signing`).
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
    check_new_contract(&n, &mut errs);
    let mut c = wf.db().await?;
    let tpl = c
        .query_opt(
            "SELECT template_text FROM workflow.contract_types WHERE id = $1 AND deleted_at IS NULL",
            &[&n.contract_type_id],
        )
        .await?
        .ok_or_else(|| ApiError::field("contract_type_id", "no such contract type"))?;
    let template: String = tpl.get(0);
    let body = match render(&template, &n.variables, MAX_BODY_BYTES) {
        Ok(b) => Some(b),
        Err(RenderError(e)) => {
            errs.extend(e);
            None
        }
    };
    let mut ids = Vec::new();
    if n.signers.len() <= 20 {
        for (i, name) in n.signers.iter().enumerate() {
            let u = c
                .query_opt(
                    "SELECT id FROM workflow.users WHERE username = $1 AND tenant = $2 AND role IN ('user', 'reviewer')",
                    &[name, &tenant],
                )
                .await?;
            match u {
                Some(r) if !ids.contains(&r.get::<_, i64>(0)) => ids.push(r.get::<_, i64>(0)),
                Some(_) => {
                    errs.insert(format!("signers[{i}]"), "listed twice".into());
                }
                None => {
                    errs.insert(
                        format!("signers[{i}]"),
                        "no user of this bank with this username".into(),
                    );
                }
            }
        }
    }
    let body = match body {
        Some(b) if errs.is_empty() => b,
        _ => return Err(ApiError::validation(errs)),
    };
    let alg = wf.evidence_alg();
    let hash = hex::encode(alg.hash(body.as_bytes()));
    let tx = c.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO workflow.contracts (tenant, contract_type_id, title, body, hash_alg, contract_hash, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[&tenant, &n.contract_type_id, &n.title.trim(), &body, &alg.name(), &hash, &caller.id],
        )
        .await?
        .get(0);
    for (i, uid) in ids.iter().enumerate() {
        tx.execute(
            "INSERT INTO workflow.contract_signers (contract_id, idx, user_id) VALUES ($1, $2, $3)",
            &[&id, &(i as i32), uid],
        )
        .await?;
    }
    events::emit(
        &tx,
        Some(&tenant),
        "contract.created",
        serde_json::json!({"type": "contract", "id": id}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    let (k, _) = load(&c, &caller, id).await?;
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
    let (mut k, sub) = load_one(&wf, &caller, id).await?;
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
    /// Exact number.
    pub number: Option<String>,
    /// The contract hash, hex.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub hash: Option<String>,
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

/// Contracts of the caller's bank (administrators: all), without bodies,
/// newest first, in pages (`limit`, `after`; a full page names the next
/// cursor in `Anchord-Next-After`).
#[utoipa::path(get, path = "/v1/contracts", params(ListQuery), responses((status = 200, body = [ContractSummaryJson])))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrBank>,
    Query(q): Query<ListQuery>,
) -> Result<crate::paging::Paged<ContractSummaryJson>, ApiError> {
    let tenant = if caller.role == Role::Admin {
        None
    } else {
        Some(caller.tenant()?.to_owned())
    };
    crate::error::one_of("status", &q.status, &status::strs(ContractStatus::ALL))?;
    crate::error::hex64("hash", &q.hash)?;
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    crate::error::in_range("offset", q.offset, 0, i64::MAX)?;
    let c = wf.db().await?;
    let rows = c
        .query(
            "SELECT id, number, tenant, contract_type_id, title, octet_length(body)::bigint, hash_alg,
                    contract_hash, status, reject_reason, created_by, reviewed_by, created_at, updated_at,
                    reviewed_at
               FROM workflow.contracts
              WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR number = $3) AND ($4::text IS NULL OR contract_hash = lower($4))
                AND ($7::bigint IS NULL OR id < $7)
              ORDER BY id DESC LIMIT $5 OFFSET $6",
            &[
                &tenant,
                &q.status,
                &q.number,
                &q.hash,
                &page.limit,
                &q.offset.unwrap_or(0),
                &page.after,
            ],
        )
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut signers: BTreeMap<i64, Vec<SignerSummaryJson>> = BTreeMap::new();
    for s in c
        .query(
            "SELECT s.contract_id, s.idx, s.user_id, u.username, s.status
               FROM workflow.contract_signers s JOIN workflow.users u ON u.id = s.user_id
              WHERE s.contract_id = ANY($1) ORDER BY s.contract_id, s.idx",
            &[&ids],
        )
        .await?
    {
        signers
            .entry(s.get(0))
            .or_default()
            .push(SignerSummaryJson {
                index: s.get(1),
                user_id: s.get(2),
                username: s.get(3),
                status: s.get(4),
            });
    }
    let items = rows
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            ContractSummaryJson {
                id,
                number: r.get(1),
                tenant: r.get(2),
                contract_type_id: r.get(3),
                title: r.get(4),
                body_bytes: r.get(5),
                hash_alg: r.get(6),
                contract_hash: r.get(7),
                status: r.get(8),
                reject_reason: r.get(9),
                created_by: r.get(10),
                reviewed_by: r.get(11),
                signers: signers.remove(&id).unwrap_or_default(),
                created_at: ts(r.get(12)),
                updated_at: ts(r.get(13)),
                reviewed_at: ts_opt(r.get(14)),
            }
        })
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
    k: &ContractJson,
    signer: &SignerJson,
    public_key: &str,
) -> Result<String, ApiError> {
    signature_statement(&StatementFields {
        contract_id: k.id,
        contract_number: &k.number,
        tenant: &k.tenant,
        hash_alg: &k.hash_alg,
        contract_hash: &k.contract_hash,
        signer_index: signer.index,
        signer_user_id: signer.user_id,
        signer_username: &signer.username,
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

/// Sign (a pending signer): the signature is over the caller's own
/// statement for this contract (docs/workflow-api.md).
#[utoipa::path(post, path = "/v1/contracts/{id}/sign", params(("id" = i64, Path)), request_body = SignRequest,
    responses((status = 200, body = ContractJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, description = "the signature does not verify", body = crate::error::ErrorBody)))]
pub async fn sign(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Json<SignRequest>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let mut c = wf.db().await?;
    let (k, _) = load(&c, &caller, id).await?;
    let Some(me) = k.signers.iter().find(|s| s.user_id == caller.id) else {
        return Err(ApiError::forbidden("you are not a signer of this contract"));
    };
    // The body only now: the caller may touch the record (authz::Require).
    let Json(s) = body?;
    if k.status != ContractStatus::Signing.as_str() {
        return Err(status::conflict::<ContractStatus, tokio_postgres::Client>(
            &c,
            id,
            "signing",
            &[ContractStatus::Signing],
        )
        .await);
    }
    if me.status != SignerStatus::Pending.as_str() {
        return Err(ApiError::invalid_state(format!(
            "your signature is already {}",
            me.status
        )));
    }
    let key = c
        .query_opt(
            "SELECT custody, public_key, platform_seed_sealed FROM workflow.signing_keys WHERE user_id = $1",
            &[&caller.id],
        )
        .await?
        .ok_or_else(|| {
            ApiError::invalid_state("register a signing key first (PUT /v1/me/signing-key)")
        })?;
    let custody: String = key.get(0);
    let public: Vec<u8> = key.get(1);
    let pk: [u8; 32] = public
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::internal())?;
    let statement = statement_for(&k, me, &hex::encode(pk))?;
    let signature: Vec<u8> = if custody == "platform" {
        if s.signature.is_some() {
            return Err(ApiError::field(
                "signature",
                "your key is held by the platform, which signs for you: omit `signature`",
            ));
        }
        let kek = platform_kek(&wf)?;
        let sealed: Vec<u8> = key.get(2);
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
    // Guarded in SQL: the contract is still signing and this slot pending.
    let signed = tx
        .query_opt(
            "UPDATE workflow.contract_signers SET status = 'signed', custody = $3, public_key = $4,
                    signature = $5, statement = $6, signed_at = now()
              WHERE contract_id = $1 AND user_id = $2 AND status = 'pending'
                AND EXISTS (SELECT 1 FROM workflow.contracts WHERE id = $1 AND status = 'signing')
              RETURNING idx",
            &[&id, &caller.id, &custody, &public, &signature, &statement],
        )
        .await?;
    if signed.is_none() {
        let still_signing = tx
            .query_opt(
                "SELECT 1 FROM workflow.contracts WHERE id = $1 AND status = 'signing'",
                &[&id],
            )
            .await?
            .is_some();
        return Err(if still_signing {
            // The contract is open, the caller's slot is not: signed or
            // refused meanwhile (a concurrent request).
            ApiError::invalid_state("your signature is no longer pending")
        } else {
            status::conflict::<ContractStatus, _>(&*tx, id, "signing", &[ContractStatus::Signing])
                .await
        });
    }
    let all = tx
        .query_one(
            "SELECT bool_and(status = 'signed') FROM workflow.contract_signers WHERE contract_id = $1",
            &[&id],
        )
        .await?
        .get::<_, Option<bool>>(0)
        .unwrap_or(false);
    if all {
        status::transition(
            &tx,
            Actor::user(&caller),
            id,
            &[ContractStatus::Signing],
            ContractStatus::AwaitingReview,
            "signing",
            Change {
                note: Some("every signer signed"),
                ..Change::default()
            },
        )
        .await?;
        events::emit(
            &tx,
            Some(&k.tenant),
            "contract.awaiting_review",
            serde_json::json!({"type": "contract", "id": id, "number": k.number}),
        )
        .await?;
    } else {
        tx.execute(
            "UPDATE workflow.contracts SET updated_at = now() WHERE id = $1",
            &[&id],
        )
        .await?;
    }
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load(&c, &caller, id).await?.0))
}

/// Refuse to sign, with a reason (a pending signer): the contract is `refused`.
#[utoipa::path(post, path = "/v1/contracts/{id}/refuse", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = ContractJson), (status = 409, body = crate::error::ErrorBody)))]
pub async fn refuse(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Json<Reason>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let mut c = wf.db().await?;
    let (k, _) = load(&c, &caller, id).await?;
    if !k.signers.iter().any(|s| s.user_id == caller.id) {
        return Err(ApiError::forbidden("you are not a signer of this contract"));
    }
    // The body only now: the caller may touch the record (authz::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let tx = c.transaction().await?;
    let refused_by = format!("refused by {}: {}", caller.username, reason_text);
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        &[ContractStatus::Signing],
        ContractStatus::Refused,
        "refusing",
        Change {
            set: ", reject_reason = $4",
            params: &[&refused_by],
            ..Change::default()
        },
    )
    .await?;
    let n = tx
        .execute(
            "UPDATE workflow.contract_signers SET status = 'refused', refuse_reason = $3, refused_at = now()
              WHERE contract_id = $1 AND user_id = $2 AND status = 'pending'",
            &[&id, &caller.id, &reason_text],
        )
        .await?;
    if n == 0 {
        // Dropping the transaction rolls the contract back.
        return Err(ApiError::invalid_state(
            "your signature is not pending: you already signed or refused",
        ));
    }
    events::emit(
        &tx,
        Some(&k.tenant),
        "contract.refused",
        serde_json::json!({"type": "contract", "id": id, "by": caller.username}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load(&c, &caller, id).await?.0))
}

fn review_guard(caller: &Caller, k: &ContractJson) -> Result<(), ApiError> {
    if caller.tenant.as_deref() != Some(k.tenant.as_str()) {
        return Err(ApiError::forbidden(
            "reviewers review only their own bank's records",
        ));
    }
    if k.created_by == caller.id || k.signers.iter().any(|s| s.user_id == caller.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "self_approval",
            "nobody reviews a contract they started or signed",
        ));
    }
    Ok(())
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
    let (k, _) = load(&c, &caller, id).await?;
    review_guard(&caller, &k)?;
    let signatures = serde_json::Value::Array(
        k.signers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "index": s.index, "user_id": s.user_id,
                    "username": s.username, "custody": s.custody,
                    "public_key": s.public_key, "signature": s.signature,
                    "statement": s.statement,
                })
            })
            .collect(),
    );
    let sig_digest = hex::encode(crate::sha256(
        serde_json_canonicalizer::to_string(&signatures)
            .unwrap_or_default()
            .as_bytes(),
    ));
    let tx = c.transaction().await?;
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        &[ContractStatus::AwaitingReview],
        ContractStatus::Approved,
        "approval",
        Change {
            set: ", reviewed_by = $4, reviewed_at = now()",
            params: &[&caller.id],
            ..Change::default()
        },
    )
    .await?;
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
    tx.execute(
        "UPDATE workflow.contracts SET submission_id = $2 WHERE id = $1",
        &[&id, &sub],
    )
    .await?;
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
    Ok(axum::Json(load(&c, &caller, id).await?.0))
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
    let (k, _) = load(&c, &caller, id).await?;
    review_guard(&caller, &k)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let tx = c.transaction().await?;
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        &[ContractStatus::AwaitingReview],
        ContractStatus::Rejected,
        "rejection",
        Change {
            set: ", reject_reason = $4, reviewed_by = $5, reviewed_at = now()",
            params: &[&reason_text, &caller.id],
            ..Change::default()
        },
    )
    .await?;
    events::emit(
        &tx,
        Some(&k.tenant),
        "contract.rejected",
        serde_json::json!({"type": "contract", "id": id, "reason": reason_text}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load(&c, &caller, id).await?.0))
}

/// The contract's proof bundle, once sealed.
#[utoipa::path(get, path = "/v1/contracts/{id}/proof", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 409, body = crate::error::ErrorBody)))]
pub async fn proof(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<anchord_core::bundle::Bundle>, ApiError> {
    let (_, sub) = load_one(&wf, &caller, id).await?;
    bundle_of(&wf, sub).await
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
    let (_, sub) = load_one(&wf, &caller, id).await?;
    let axum::Json(bundle) = bundle_of(&wf, sub).await?;
    crate::certificates::pdf(&wf, bundle, &format!("contract-{id}-certificate.pdf")).await
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
