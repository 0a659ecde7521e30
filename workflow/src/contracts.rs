//! Multi-party e-contracts.
//!
//! A bank user starts a contract from a contract type (template text with
//! `{{variable}}` placeholders) and names the signers (users of the same
//! bank). The contract's hash is SHA-256 (SM3 under the sm3 suite) of the
//! rendered UTF-8 text. Each signer signs the 32 raw hash bytes with
//! Ed25519: with a key they hold (they register its public key and submit
//! the signature) or with a key the platform keeps for them (stated as such
//! in every response). Status: `signing → awaiting_review → approved →
//! on_chain`, or `refused` (a signer refused) or `rejected` (the reviewer).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Require, Role, roles};
use crate::error::{ApiError, Json, Path, Query};
use crate::evidence::{self, NewSubmission};
use crate::preservations::{LedgerJson, Reason, bundle_of, ledger_view};
use crate::{Workflow, ts, ts_opt, webhooks};

/// What a platform-held key means, said wherever one is used.
pub const PLATFORM_CUSTODY_STATEMENT: &str = "This signature was made with an Ed25519 key that the platform generated and keeps on the signer's behalf (platform custody), not with a key held by the signer.";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContractType {
    pub name: String,
    /// Template text; `{{name}}` placeholders are filled from `variables`.
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

fn placeholders(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        rest = &rest[i + 2..];
        let Some(j) = rest.find("}}") else { break };
        let name = rest[..j].trim().to_owned();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &rest[j + 2..];
    }
    out
}

/// Create a contract type (administrators).
#[utoipa::path(post, path = "/v1/contract-types", request_body = NewContractType,
    responses((status = 201, body = ContractTypeJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_type(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(t): Json<NewContractType>,
) -> Result<(StatusCode, axum::Json<ContractTypeJson>), ApiError> {
    let mut errs = BTreeMap::new();
    if t.name.trim().is_empty() || t.name.chars().count() > 200 {
        errs.insert("name".into(), "1-200 characters".into());
    }
    if t.template_text.is_empty() || t.template_text.chars().count() > 100_000 {
        errs.insert("template_text".into(), "1-100000 characters".into());
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
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

/// Contract types.
#[utoipa::path(get, path = "/v1/contract-types", responses((status = 200, body = [ContractTypeJson])))]
pub async fn list_types(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
) -> Result<axum::Json<Vec<ContractTypeJson>>, ApiError> {
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
                let text: String = r.get(2);
                ContractTypeJson {
                    id: r.get(0),
                    name: r.get(1),
                    variables: placeholders(&text),
                    template_text: text,
                    created_at: ts(r.get(3)),
                }
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRequest {
    /// `client` (send `public_key`) or `platform` (the platform generates
    /// and keeps the key for you).
    pub custody: String,
    /// Hex Ed25519 public key (32 bytes), for `client`.
    pub public_key: Option<String>,
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

/// Register (or replace) the caller's signing key.
#[utoipa::path(put, path = "/v1/me/signing-key", request_body = SigningKeyRequest,
    responses((status = 200, body = SigningKeyJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn register_key(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Json(k): Json<SigningKeyRequest>,
) -> Result<axum::Json<SigningKeyJson>, ApiError> {
    let (public, seed): (Vec<u8>, Option<Vec<u8>>) = match k.custody.as_str() {
        "client" => {
            let pk = k
                .public_key
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .filter(|b| b.len() == 32)
                .and_then(|b| {
                    let arr: [u8; 32] = b.try_into().ok()?;
                    VerifyingKey::from_bytes(&arr).ok()
                })
                .ok_or_else(|| {
                    ApiError::field("public_key", "a hex Ed25519 public key (64 hex digits)")
                })?;
            (pk.to_bytes().to_vec(), None)
        }
        "platform" => {
            let kek = platform_kek(&wf)?;
            let seed = crate::random32();
            let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
            // Sealed, bound to this row (the user's id) and the public key.
            let sealed = kek.seal(caller.id, &public, &seed);
            (public.to_vec(), Some(sealed))
        }
        _ => return Err(ApiError::field("custody", "client or platform")),
    };
    let c = wf.db().await?;
    c.execute(
        "INSERT INTO workflow.signing_keys (user_id, custody, public_key, platform_seed_sealed)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET custody = $2, public_key = $3, platform_seed_sealed = $4, created_at = now()",
        &[&caller.id, &k.custody, &public, &seed],
    )
    .await?;
    Ok(axum::Json(SigningKeyJson {
        statement: (k.custody == "platform").then_some(PLATFORM_CUSTODY_STATEMENT),
        custody: k.custody,
        public_key: hex::encode(public),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    pub contract_type_id: i64,
    pub title: String,
    /// Values of the template's placeholders.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Usernames of the signers (users of the same bank), in signing order.
    pub signers: Vec<String>,
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
    /// Hex Ed25519 signature over the contract hash bytes.
    pub signature: Option<String>,
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
    /// Hex digest of `body` (UTF-8): what each signer signs.
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

async fn load(
    wf: &Workflow,
    caller: &Caller,
    id: i64,
) -> Result<(ContractJson, Option<i64>), ApiError> {
    let c = wf.db().await?;
    let r = c
        .query_opt(
            "SELECT id, number, tenant, contract_type_id, title, body, hash_alg, contract_hash, status,
                    reject_reason, created_by, reviewed_by, created_at, updated_at, reviewed_at, submission_id
               FROM workflow.contracts WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("contract"))?;
    let signers: Vec<SignerJson> = c
        .query(
            "SELECT s.idx, s.user_id, u.username, s.status, s.custody, s.public_key, s.signature,
                    s.refuse_reason, s.invited_at, s.signed_at, s.refused_at
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

/// Start a contract (status `signing`).
#[utoipa::path(post, path = "/v1/contracts", request_body = NewContract,
    responses((status = 201, body = ContractJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Json(n): Json<NewContract>,
) -> Result<(StatusCode, axum::Json<ContractJson>), ApiError> {
    let tenant = caller.tenant()?.to_owned();
    let mut c = wf.db().await?;
    let tpl = c
        .query_opt(
            "SELECT template_text FROM workflow.contract_types WHERE id = $1 AND deleted_at IS NULL",
            &[&n.contract_type_id],
        )
        .await?
        .ok_or_else(|| ApiError::field("contract_type_id", "no such contract type"))?;
    let mut body: String = tpl.get(0);
    let mut errs = BTreeMap::new();
    if n.title.trim().is_empty() || n.title.chars().count() > 200 {
        errs.insert("title".into(), "1-200 characters".into());
    }
    for p in placeholders(&body) {
        match n.variables.get(&p) {
            Some(v) if !v.is_empty() && v.chars().count() <= 2000 => {}
            _ => {
                errs.insert(
                    format!("variables.{p}"),
                    "required, 1-2000 characters".into(),
                );
            }
        }
    }
    if n.signers.is_empty() || n.signers.len() > 20 {
        errs.insert("signers".into(), "1 to 20 signers".into());
    }
    let mut ids = Vec::new();
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
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    for (k, v) in &n.variables {
        body = body.replace(&format!("{{{{{k}}}}}"), v);
    }
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
    webhooks::enqueue(
        &tx,
        Some(&tenant),
        "contract.created",
        serde_json::json!({"type": "contract", "id": id}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok((
        StatusCode::CREATED,
        axum::Json(load(&wf, &caller, id).await?.0),
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
    let (mut k, sub) = load(&wf, &caller, id).await?;
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
}

/// Contracts of the caller's bank (administrators: all).
#[utoipa::path(get, path = "/v1/contracts", params(ListQuery), responses((status = 200, body = [ContractJson])))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrBank>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Vec<ContractJson>>, ApiError> {
    let tenant = if caller.role == Role::Admin {
        None
    } else {
        Some(caller.tenant()?.to_owned())
    };
    crate::error::one_of(
        "status",
        &q.status,
        &[
            "signing",
            "awaiting_review",
            "approved",
            "on_chain",
            "refused",
            "rejected",
        ],
    )?;
    crate::error::hex64("hash", &q.hash)?;
    let c = wf.db().await?;
    let ids: Vec<i64> = c
        .query(
            "SELECT id FROM workflow.contracts
              WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR number = $3) AND ($4::text IS NULL OR contract_hash = lower($4))
              ORDER BY id DESC LIMIT 500",
            &[&tenant, &q.status, &q.number, &q.hash],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for id in ids {
        out.push(load(&wf, &caller, id).await?.0);
    }
    Ok(axum::Json(out))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Hex Ed25519 signature over the contract hash bytes (client custody).
    /// Omit with a platform-held key: the platform signs.
    pub signature: Option<String>,
}

/// Sign (a pending signer).
#[utoipa::path(post, path = "/v1/contracts/{id}/sign", params(("id" = i64, Path)), request_body = SignRequest,
    responses((status = 200, body = ContractJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, description = "the signature does not verify", body = crate::error::ErrorBody)))]
pub async fn sign(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Json<SignRequest>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let (k, _) = load(&wf, &caller, id).await?;
    let Some(me) = k.signers.iter().find(|s| s.user_id == caller.id) else {
        return Err(ApiError::forbidden("you are not a signer of this contract"));
    };
    // The body only now: the caller may touch the record (auth::Require).
    let Json(s) = body?;
    if k.status != "signing" || me.status != "pending" {
        return Err(ApiError::invalid_state(format!(
            "the contract is {} and your signature is {}",
            k.status, me.status
        )));
    }
    let mut c = wf.db().await?;
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
    let hash = hex::decode(&k.contract_hash).map_err(|_| ApiError::internal())?;
    let signature: Vec<u8> = if custody == "platform" {
        let kek = platform_kek(&wf)?;
        let sealed: Vec<u8> = key.get(2);
        let pk: [u8; 32] = public
            .clone()
            .try_into()
            .map_err(|_| ApiError::internal())?;
        let seed = kek.open(caller.id, &pk, &sealed).map_err(|e| match e {
            crate::keyseal::OpenError::OtherKek { .. } => {
                tracing::error!(user_id = caller.id, error = %e, "platform-held signing key");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_configured",
                    "your platform-held key was sealed under another key-encryption key than the configured one",
                )
            }
            e => {
                tracing::error!(user_id = caller.id, error = %e, "platform-held signing key does not open");
                ApiError::internal()
            }
        })?;
        let sk = SigningKey::from_bytes(&seed);
        if sk.verifying_key().to_bytes() != pk {
            tracing::error!(
                user_id = caller.id,
                "platform-held seed does not match its public key"
            );
            return Err(ApiError::internal());
        }
        sk.sign(&hash).to_bytes().to_vec()
    } else {
        let sig = s
            .signature
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() == 64)
            .ok_or_else(|| {
                ApiError::field("signature", "a hex Ed25519 signature (128 hex digits)")
            })?;
        let pk: [u8; 32] = public
            .clone()
            .try_into()
            .map_err(|_| ApiError::internal())?;
        let vk = VerifyingKey::from_bytes(&pk).map_err(|_| ApiError::internal())?;
        let sig_arr: [u8; 64] = sig.clone().try_into().map_err(|_| ApiError::internal())?;
        vk.verify(&hash, &ed25519_dalek::Signature::from_bytes(&sig_arr))
            .map_err(|_| {
                ApiError::field(
                    "signature",
                    "does not verify against your registered public key over the contract hash",
                )
            })?;
        sig
    };
    let tx = c.transaction().await?;
    let n = tx
        .execute(
            "UPDATE workflow.contract_signers SET status = 'signed', custody = $3, public_key = $4,
                    signature = $5, signed_at = now()
              WHERE contract_id = $1 AND user_id = $2 AND status = 'pending'",
            &[&id, &caller.id, &custody, &public, &signature],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::invalid_state("already signed or refused"));
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
        tx.execute(
            "UPDATE workflow.contracts SET status = 'awaiting_review', updated_at = now()
              WHERE id = $1 AND status = 'signing'",
            &[&id],
        )
        .await?;
        webhooks::enqueue(
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
    Ok(axum::Json(load(&wf, &caller, id).await?.0))
}

/// Refuse to sign, with a reason (a pending signer): the contract is `refused`.
#[utoipa::path(post, path = "/v1/contracts/{id}/refuse", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = ContractJson)))]
pub async fn refuse(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Json<Reason>, ApiError>,
) -> Result<axum::Json<ContractJson>, ApiError> {
    let (k, _) = load(&wf, &caller, id).await?;
    if !k.signers.iter().any(|s| s.user_id == caller.id) {
        return Err(ApiError::forbidden("you are not a signer of this contract"));
    }
    // The body only now: the caller may touch the record (auth::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let n = tx
        .execute(
            "UPDATE workflow.contract_signers SET status = 'refused', refuse_reason = $3, refused_at = now()
              WHERE contract_id = $1 AND user_id = $2 AND status = 'pending'
                AND EXISTS (SELECT 1 FROM workflow.contracts WHERE id = $1 AND status = 'signing')",
            &[&id, &caller.id, &reason_text],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::invalid_state("nothing to refuse"));
    }
    tx.execute(
        "UPDATE workflow.contracts SET status = 'refused', reject_reason = $2, updated_at = now() WHERE id = $1",
        &[&id, &format!("refused by {}: {}", caller.username, reason_text)],
    )
    .await?;
    webhooks::enqueue(
        &tx,
        Some(&k.tenant),
        "contract.refused",
        serde_json::json!({"type": "contract", "id": id, "by": caller.username}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load(&wf, &caller, id).await?.0))
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
    let (k, _) = load(&wf, &caller, id).await?;
    review_guard(&caller, &k)?;
    let signatures = serde_json::Value::Array(
        k.signers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "username": s.username, "custody": s.custody,
                    "public_key": s.public_key, "signature": s.signature,
                })
            })
            .collect(),
    );
    let sig_digest = hex::encode(crate::sha256(
        serde_json_canonicalizer::to_string(&signatures)
            .unwrap_or_default()
            .as_bytes(),
    ));
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let n = tx
        .execute(
            "UPDATE workflow.contracts SET status = 'approved', reviewed_by = $2, reviewed_at = now(), updated_at = now()
              WHERE id = $1 AND status = 'awaiting_review'",
            &[&id, &caller.id],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::invalid_state(format!(
            "a contract that is {} cannot be approved",
            k.status
        )));
    }
    let sub = evidence::enqueue(
        &tx,
        &NewSubmission {
            kind: "contract",
            object_id: id,
            tenant: k.tenant.clone(),
            external_id: format!("wf-contract-{id}"),
            hash_alg: if k.hash_alg == "sm3" { "sm3" } else { "sha256" },
            hash: k.contract_hash.clone(),
            metadata: serde_json::json!({
                "source": "anchord-workflow",
                "kind": "contract",
                "number": k.number,
                "signers": k.signers.len(),
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
    webhooks::enqueue(
        &tx,
        Some(&k.tenant),
        "contract.approved",
        serde_json::json!({"type": "contract", "id": id, "number": k.number}),
    )
    .await?;
    tx.commit().await?;
    wf.submissions_kick.notify_one();
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load(&wf, &caller, id).await?.0))
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
    let (k, _) = load(&wf, &caller, id).await?;
    review_guard(&caller, &k)?;
    // The body only now: the caller may touch the record (auth::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let n = tx
        .execute(
            "UPDATE workflow.contracts SET status = 'rejected', reject_reason = $3, reviewed_by = $2,
                    reviewed_at = now(), updated_at = now()
              WHERE id = $1 AND status = 'awaiting_review'",
            &[&id, &caller.id, &reason_text],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::invalid_state(
            "only a contract awaiting review can be rejected",
        ));
    }
    webhooks::enqueue(
        &tx,
        Some(&k.tenant),
        "contract.rejected",
        serde_json::json!({"type": "contract", "id": id, "reason": reason_text}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load(&wf, &caller, id).await?.0))
}

/// The contract's proof bundle, once sealed.
#[utoipa::path(get, path = "/v1/contracts/{id}/proof", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 409, body = crate::error::ErrorBody)))]
pub async fn proof(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<anchord_core::bundle::Bundle>, ApiError> {
    let (_, sub) = load(&wf, &caller, id).await?;
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
    let (_, sub) = load(&wf, &caller, id).await?;
    let axum::Json(bundle) = bundle_of(&wf, sub).await?;
    crate::certificates::pdf(&wf, bundle, &format!("contract-{id}-certificate.pdf")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_once_in_order() {
        assert_eq!(
            placeholders("借款人 {{borrower}} 向 {{lender}} 借款 {{amount}} 元，{{borrower}} 签字"),
            vec!["borrower", "lender", "amount"]
        );
        assert!(placeholders("no placeholders {{").is_empty());
    }
}
