//! Contracts, contract types, signing keys and signers: every SQL statement
//! on `workflow.contracts`, `workflow.contract_types`,
//! `workflow.contract_signers`, `workflow.contract_invitations`,
//! `workflow.signing_keys` and `workflow.signing_key_challenges`, and the
//! contract and signer status transitions (through
//! [`crate::status::transition`]).

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::StoreError;
use crate::status::{self, Actor, Change, ContractStatus, SignerStatus, Status};

type Time = time::OffsetDateTime;

// ---------------------------------------------------------------------------
// Contract types

/// A contract type as stored.
#[derive(Debug, Clone)]
pub struct ContractType {
    pub id: i64,
    pub name: String,
    pub template_text: String,
    pub created_at: Time,
}

fn type_from_row(r: &tokio_postgres::Row) -> Result<ContractType, StoreError> {
    Ok(ContractType {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        template_text: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

/// A new contract type; returns it.
pub async fn create_type<C: GenericClient + Sync>(
    c: &C,
    name: &str,
    template_text: &str,
) -> Result<ContractType, StoreError> {
    let r = c
        .query_one(
            "INSERT INTO workflow.contract_types (name, template_text) VALUES ($1, $2)
             RETURNING id, name, template_text, created_at",
            &[&name, &template_text],
        )
        .await?;
    type_from_row(&r)
}

/// Every live contract type, by id.
pub async fn list_types<C: GenericClient + Sync>(c: &C) -> Result<Vec<ContractType>, StoreError> {
    c.query(
        "SELECT id, name, template_text, created_at FROM workflow.contract_types
          WHERE deleted_at IS NULL ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(type_from_row)
    .collect()
}

/// The live contract type `id`.
pub async fn get_type<C: GenericClient + Sync>(c: &C, id: i64) -> Result<ContractType, StoreError> {
    let r = c
        .query_opt(
            "SELECT id, name, template_text, created_at FROM workflow.contract_types
              WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("contract type"))?;
    type_from_row(&r)
}

// ---------------------------------------------------------------------------
// Signing keys

/// A new registration challenge for `user_id` (replacing any previous
/// one), valid `ttl_s` seconds; returns when it expires.
pub async fn put_challenge<C: GenericClient + Sync>(
    c: &C,
    user_id: i64,
    challenge: &[u8],
    ttl_s: i64,
) -> Result<Time, StoreError> {
    Ok(c
        .query_one(
            "INSERT INTO workflow.signing_key_challenges (user_id, challenge, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (user_id) DO UPDATE SET challenge = $2, expires_at = now() + make_interval(secs => $3)
             RETURNING expires_at",
            &[&user_id, &challenge, &(ttl_s as f64)],
        )
        .await?
        .get(0))
}

/// Use `user_id`'s challenge once, before it expires: `false` when it is
/// unknown, used or expired.
pub async fn use_challenge(
    tx: &Transaction<'_>,
    user_id: i64,
    challenge: &[u8],
) -> Result<bool, StoreError> {
    Ok(tx
        .execute(
            "DELETE FROM workflow.signing_key_challenges
              WHERE user_id = $1 AND challenge = $2 AND expires_at > now()",
            &[&user_id, &challenge],
        )
        .await?
        > 0)
}

/// Has `public_key` signed a contract for someone other than `user_id`?
pub async fn key_signed_for_another(
    tx: &Transaction<'_>,
    public_key: &[u8],
    user_id: i64,
) -> Result<bool, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM workflow.contract_signers WHERE public_key = $1 AND user_id <> $2 LIMIT 1",
            &[&public_key, &user_id],
        )
        .await?
        .is_some())
}

/// A signing key to register.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub user_id: i64,
    /// `client` or `platform`.
    pub custody: &'a str,
    pub public_key: &'a [u8],
    pub sealed_seed: Option<&'a [u8]>,
    pub pop_statement: Option<&'a str>,
    pub pop_signature: Option<&'a [u8]>,
}

/// Register (or replace) a user's signing key: `false` when the public key
/// is registered to another user.
pub async fn put_key(tx: &Transaction<'_>, k: &NewKey<'_>) -> Result<bool, StoreError> {
    let r = tx
        .execute(
            "INSERT INTO workflow.signing_keys
                 (user_id, custody, public_key, platform_seed_sealed, pop_statement, pop_signature)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id) DO UPDATE SET custody = $2, public_key = $3, platform_seed_sealed = $4,
                 pop_statement = $5, pop_signature = $6, created_at = now()",
            &[
                &k.user_id,
                &k.custody,
                &k.public_key,
                &k.sealed_seed,
                &k.pop_statement,
                &k.pop_signature,
            ],
        )
        .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A registered signing key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// `client` or `platform`.
    pub custody: String,
    pub public_key: Vec<u8>,
    /// The platform-held seed, sealed (`crate::keyseal`).
    pub sealed_seed: Option<Vec<u8>>,
}

/// `user_id`'s signing key, if registered.
pub async fn key_of<C: GenericClient + Sync>(
    c: &C,
    user_id: i64,
) -> Result<Option<SigningKey>, StoreError> {
    Ok(c
        .query_opt(
            "SELECT custody, public_key, platform_seed_sealed FROM workflow.signing_keys WHERE user_id = $1",
            &[&user_id],
        )
        .await?
        .map(|r| SigningKey {
            custody: r.get(0),
            public_key: r.get(1),
            sealed_seed: r.get(2),
        }))
}

/// `user_id`'s registered key as its owner reads it: custody, public key
/// and when it was registered (never the sealed seed).
pub async fn registered_key<C: GenericClient + Sync>(
    c: &C,
    user_id: i64,
) -> Result<Option<(String, Vec<u8>, Time)>, StoreError> {
    Ok(c.query_opt(
        "SELECT custody, public_key, created_at FROM workflow.signing_keys WHERE user_id = $1",
        &[&user_id],
    )
    .await?
    .map(|r| (r.get(0), r.get(1), r.get(2))))
}

// ---------------------------------------------------------------------------
// Contracts

/// A signer's slot as stored.
#[derive(Debug, Clone)]
pub struct Signer {
    pub index: i32,
    /// `None` while an invited outside party has not redeemed the
    /// invitation.
    pub user_id: Option<i64>,
    pub username: Option<String>,
    /// The signer's organisation (the user's tenant); `None` for outside
    /// parties.
    pub organisation: Option<String>,
    pub status: SignerStatus,
    pub custody: Option<String>,
    pub public_key: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    pub statement: Option<String>,
    pub refuse_reason: Option<String>,
    pub invited_at: Time,
    pub signed_at: Option<Time>,
    pub refused_at: Option<Time>,
    /// The invitation of an outside party (by e-mail or phone).
    pub invitation: Option<Invitation>,
}

/// The invitation of an outside party (never its token: only its hash is
/// stored).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub expires_at: Time,
    pub redeemed_at: Option<Time>,
}

/// A contract as stored, with its signers in order.
#[derive(Debug, Clone)]
pub struct Contract {
    pub id: i64,
    pub number: String,
    pub tenant: String,
    pub contract_type_id: i64,
    pub title: String,
    /// The body (empty in lists: see `body_bytes`).
    pub body: String,
    pub body_bytes: i64,
    pub hash_alg: String,
    pub contract_hash: String,
    pub status: ContractStatus,
    pub reject_reason: Option<String>,
    pub created_by: i64,
    pub reviewed_by: Option<i64>,
    pub created_at: Time,
    pub updated_at: Time,
    pub reviewed_at: Option<Time>,
    /// Its evidence submission, once approved.
    pub submission_id: Option<i64>,
    pub signers: Vec<Signer>,
}

impl Contract {
    /// The slot of `user_id`, if they are a signer.
    pub fn signer(&self, user_id: i64) -> Option<&Signer> {
        self.signers.iter().find(|s| s.user_id == Some(user_id))
    }
}

fn parse<S: Status>(s: &str) -> Result<S, StoreError> {
    S::parse(s).ok_or_else(|| StoreError::Inconsistent(format!("unknown {} status {s:?}", S::KIND)))
}

const CONTRACT_COLUMNS: &str = "k.id, k.number, k.tenant, k.contract_type_id, k.title, k.hash_alg, k.contract_hash,
    k.status, k.reject_reason, k.created_by, k.reviewed_by, k.created_at, k.updated_at, k.reviewed_at,
    k.submission_id, octet_length(k.body)::bigint";

fn contract_from_row(r: &tokio_postgres::Row, body: String) -> Result<Contract, StoreError> {
    Ok(Contract {
        id: r.try_get(0)?,
        number: r.try_get(1)?,
        tenant: r.try_get(2)?,
        contract_type_id: r.try_get(3)?,
        title: r.try_get(4)?,
        hash_alg: r.try_get(5)?,
        contract_hash: r.try_get(6)?,
        status: parse(r.try_get(7)?)?,
        reject_reason: r.try_get(8)?,
        created_by: r.try_get(9)?,
        reviewed_by: r.try_get(10)?,
        created_at: r.try_get(11)?,
        updated_at: r.try_get(12)?,
        reviewed_at: r.try_get(13)?,
        submission_id: r.try_get(14)?,
        body_bytes: r.try_get(15)?,
        body,
        signers: Vec::new(),
    })
}

const SIGNER_COLUMNS: &str = "s.contract_id, s.idx, s.user_id, u.username, u.tenant, s.status, s.custody,
    s.public_key, s.signature, s.statement, s.refuse_reason, s.invited_at, s.signed_at, s.refused_at,
    i.email, i.phone, i.expires_at, i.redeemed_at";

const SIGNER_FROM: &str = "workflow.contract_signers s
    LEFT JOIN workflow.users u ON u.id = s.user_id
    LEFT JOIN workflow.contract_invitations i ON i.contract_id = s.contract_id AND i.idx = s.idx";

fn signer_from_row(r: &tokio_postgres::Row) -> Result<(i64, Signer), StoreError> {
    let invitation = match r.try_get::<_, Option<Time>>(16)? {
        Some(expires_at) => Some(Invitation {
            email: r.try_get(14)?,
            phone: r.try_get(15)?,
            expires_at,
            redeemed_at: r.try_get(17)?,
        }),
        None => None,
    };
    Ok((
        r.try_get(0)?,
        Signer {
            index: r.try_get(1)?,
            user_id: r.try_get(2)?,
            username: r.try_get(3)?,
            organisation: r.try_get(4)?,
            status: parse(r.try_get(5)?)?,
            custody: r.try_get(6)?,
            public_key: r.try_get(7)?,
            signature: r.try_get(8)?,
            statement: r.try_get(9)?,
            refuse_reason: r.try_get(10)?,
            invited_at: r.try_get(11)?,
            signed_at: r.try_get(12)?,
            refused_at: r.try_get(13)?,
            invitation,
        },
    ))
}

async fn signers_of<C: GenericClient + Sync>(
    c: &C,
    ids: &[i64],
) -> Result<Vec<(i64, Signer)>, StoreError> {
    c.query(
        &format!(
            "SELECT {SIGNER_COLUMNS} FROM {SIGNER_FROM}
              WHERE s.contract_id = ANY($1) ORDER BY s.contract_id, s.idx"
        ),
        &[&ids],
    )
    .await?
    .iter()
    .map(signer_from_row)
    .collect()
}

/// The contract `id`, with its body and signers.
pub async fn get<C: GenericClient + Sync>(c: &C, id: i64) -> Result<Contract, StoreError> {
    let r = c
        .query_opt(
            &format!("SELECT {CONTRACT_COLUMNS}, k.body FROM workflow.contracts k WHERE k.id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("contract"))?;
    let body: String = r.try_get(16)?;
    let mut k = contract_from_row(&r, body)?;
    k.signers = signers_of(c, &[id])
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    Ok(k)
}

/// The template text of the live contract type `id`.
pub async fn template_of<C: GenericClient + Sync>(
    c: &C,
    id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt(
        "SELECT template_text FROM workflow.contract_types WHERE id = $1 AND deleted_at IS NULL",
        &[&id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The id of the user `username` who may sign for `organisation` (a user or
/// reviewer of that bank or enterprise, neither they nor their organisation
/// disabled: a disabled organisation's users cannot log in, so a contract
/// naming one could never be signed; security review H19).
pub async fn organisation_signer<C: GenericClient + Sync>(
    c: &C,
    username: &str,
    organisation: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(c.query_opt(
        "SELECT u.id FROM workflow.users u
               LEFT JOIN workflow.organisations o ON o.id = u.organisation_id
              WHERE u.username = $1 AND u.tenant = $2 AND u.role IN ('user', 'reviewer')
                AND u.disabled_at IS NULL AND o.disabled_at IS NULL",
        &[&username, &organisation],
    )
    .await?
    .map(|r| r.get(0)))
}

/// A new contract's stored parts.
#[derive(Debug)]
pub struct NewContract<'a> {
    pub tenant: &'a str,
    pub contract_type_id: i64,
    pub title: &'a str,
    pub body: &'a str,
    pub hash_alg: &'a str,
    pub contract_hash: &'a str,
    pub created_by: i64,
}

/// A new signer's slot: a known user, or an outside party invited by
/// e-mail or phone (the token's SHA-256, valid `ttl_s` seconds).
#[derive(Debug)]
pub enum NewSigner<'a> {
    User(i64),
    Invited {
        email: Option<&'a str>,
        phone: Option<&'a str>,
        token_hash: &'a [u8],
        ttl_s: i64,
    },
}

/// Insert a contract (status `signing`) and its signers' slots; returns its
/// id.
pub async fn create(
    tx: &Transaction<'_>,
    n: &NewContract<'_>,
    signers: &[NewSigner<'_>],
) -> Result<i64, StoreError> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO workflow.contracts (tenant, contract_type_id, title, body, hash_alg, contract_hash, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &n.tenant,
                &n.contract_type_id,
                &n.title,
                &n.body,
                &n.hash_alg,
                &n.contract_hash,
                &n.created_by,
            ],
        )
        .await?
        .get(0);
    for (i, s) in signers.iter().enumerate() {
        let idx = i as i32;
        match s {
            NewSigner::User(uid) => {
                tx.execute(
                    "INSERT INTO workflow.contract_signers (contract_id, idx, user_id) VALUES ($1, $2, $3)",
                    &[&id, &idx, uid],
                )
                .await?;
            }
            NewSigner::Invited {
                email,
                phone,
                token_hash,
                ttl_s,
            } => {
                tx.execute(
                    "INSERT INTO workflow.contract_signers (contract_id, idx, user_id) VALUES ($1, $2, NULL)",
                    &[&id, &idx],
                )
                .await?;
                tx.execute(
                    "INSERT INTO workflow.contract_invitations (contract_id, idx, email, phone, token_hash, expires_at)
                     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
                    &[&id, &idx, email, phone, token_hash, &(*ttl_s as f64)],
                )
                .await?;
            }
        }
    }
    Ok(id)
}

/// What a contract list selects.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// Contracts of this bank, or (with `signer`) those this user signs.
    pub tenant: Option<&'a str>,
    /// Contracts where this user has a signer's slot.
    pub signer: Option<i64>,
    pub status: Option<ContractStatus>,
    pub number: Option<&'a str>,
    /// Lowercase or uppercase hex contract hash.
    pub hash: Option<&'a str>,
    /// Only contracts where `signer`'s own slot is pending.
    pub pending_signature: bool,
    pub limit: i64,
    pub offset: i64,
    pub after: Option<i64>,
}

/// Contracts matching `f` (without bodies), newest first, with their
/// signers. With both `tenant` and `signer`, a contract matches when it is
/// of the bank OR the user signs it.
pub async fn list<C: GenericClient + Sync>(
    c: &C,
    f: &Filter<'_>,
) -> Result<Vec<Contract>, StoreError> {
    let status = f.status.map(|s| s.as_str());
    let params: [&(dyn ToSql + Sync); 9] = [
        &f.tenant,
        &status,
        &f.number,
        &f.hash,
        &f.limit,
        &f.offset,
        &f.after,
        &f.signer,
        &f.pending_signature,
    ];
    let rows = c
        .query(
            &format!(
                "SELECT {CONTRACT_COLUMNS} FROM workflow.contracts k
                  WHERE (($1::text IS NULL AND $8::bigint IS NULL) OR k.tenant = $1
                         OR EXISTS (SELECT 1 FROM workflow.contract_signers s
                                     WHERE s.contract_id = k.id AND s.user_id = $8))
                    AND ($2::text IS NULL OR k.status = $2)
                    AND ($3::text IS NULL OR k.number = $3) AND ($4::text IS NULL OR k.contract_hash = lower($4))
                    AND ($7::bigint IS NULL OR k.id < $7)
                    AND (NOT $9::bool OR EXISTS (SELECT 1 FROM workflow.contract_signers s
                                     WHERE s.contract_id = k.id AND s.user_id = $8 AND s.status = 'pending'))
                  ORDER BY k.id DESC LIMIT $5 OFFSET $6"
            ),
            &params,
        )
        .await?;
    let mut out = rows
        .iter()
        .map(|r| contract_from_row(r, String::new()))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<i64> = out.iter().map(|k| k.id).collect();
    let mut signers = signers_of(c, &ids).await?.into_iter().peekable();
    // Both newest first / by contract: match them up by id.
    let mut by_id: std::collections::BTreeMap<i64, Vec<Signer>> = Default::default();
    for (kid, s) in signers.by_ref() {
        by_id.entry(kid).or_default().push(s);
    }
    for k in &mut out {
        k.signers = by_id.remove(&k.id).unwrap_or_default();
    }
    Ok(out)
}

/// What a signature fills in.
#[derive(Debug)]
pub struct Signature<'a> {
    pub custody: &'a str,
    pub public_key: &'a [u8],
    pub signature: &'a [u8],
    pub statement: &'a str,
}

/// How a signature went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// Recorded; others are still pending.
    Recorded,
    /// Recorded, and it was the last: the contract awaits review.
    AllSigned,
}

/// Record `user_id`'s signature in their pending slot of `id` while the
/// contract is signing (guarded in SQL); the last one moves the contract
/// to `awaiting_review` (audited).
pub async fn sign(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    user_id: i64,
    s: &Signature<'_>,
) -> Result<Signed, StoreError> {
    let signed = tx
        .query_opt(
            "UPDATE workflow.contract_signers SET status = $7, custody = $3, public_key = $4,
                    signature = $5, statement = $6, signed_at = now()
              WHERE contract_id = $1 AND user_id = $2 AND status = $8
                AND EXISTS (SELECT 1 FROM workflow.contracts WHERE id = $1 AND status = $9)
              RETURNING idx",
            &[
                &id,
                &user_id,
                &s.custody,
                &s.public_key,
                &s.signature,
                &s.statement,
                &SignerStatus::Signed.as_str(),
                &SignerStatus::Pending.as_str(),
                &ContractStatus::Signing.as_str(),
            ],
        )
        .await?;
    if signed.is_none() {
        let still_signing = tx
            .query_opt(
                "SELECT 1 FROM workflow.contracts WHERE id = $1 AND status = $2",
                &[&id, &ContractStatus::Signing.as_str()],
            )
            .await?
            .is_some();
        return Err(if still_signing {
            // The contract is open, the caller's slot is not: signed or
            // refused meanwhile (a concurrent request).
            StoreError::Changed("your signature is no longer pending")
        } else {
            status::conflict_error(tx, id, "signing", &[ContractStatus::Signing]).await
        });
    }
    let all = tx
        .query_one(
            "SELECT bool_and(status = $2) FROM workflow.contract_signers WHERE contract_id = $1",
            &[&id, &SignerStatus::Signed.as_str()],
        )
        .await?
        .get::<_, Option<bool>>(0)
        .unwrap_or(false);
    if all {
        status::transition(
            tx,
            by,
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
        Ok(Signed::AllSigned)
    } else {
        tx.execute(
            "UPDATE workflow.contracts SET updated_at = now() WHERE id = $1",
            &[&id],
        )
        .await?;
        Ok(Signed::Recorded)
    }
}

/// `user_id` refuses: the contract `signing → refused` (audited) and their
/// pending slot `refused`, or nothing.
pub async fn refuse(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    user_id: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let refused_by = format!("refused by {}: {}", by.username, reason);
    status::transition(
        tx,
        by,
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
            "UPDATE workflow.contract_signers SET status = $4, refuse_reason = $3, refused_at = now()
              WHERE contract_id = $1 AND user_id = $2 AND status = $5",
            &[
                &id,
                &user_id,
                &reason,
                &SignerStatus::Refused.as_str(),
                &SignerStatus::Pending.as_str(),
            ],
        )
        .await?;
    if n == 0 {
        // The caller drops the transaction: the contract rolls back.
        return Err(StoreError::Changed(
            "your signature is not pending: you already signed or refused",
        ));
    }
    Ok(())
}

/// `awaiting_review → approved` by `reviewer` (audited).
pub async fn approve(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    reviewer: i64,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        &[ContractStatus::AwaitingReview],
        ContractStatus::Approved,
        "approval",
        Change {
            set: ", reviewed_by = $4, reviewed_at = now()",
            params: &[&reviewer],
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}

/// Link an approved contract to its evidence submission.
pub async fn set_submission(
    tx: &Transaction<'_>,
    id: i64,
    submission: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workflow.contracts SET submission_id = $2 WHERE id = $1",
        &[&id, &submission],
    )
    .await?;
    Ok(())
}

/// `awaiting_review → rejected` with a reason (audited).
pub async fn reject(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    reviewer: i64,
    reason: &str,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        &[ContractStatus::AwaitingReview],
        ContractStatus::Rejected,
        "rejection",
        Change {
            set: ", reject_reason = $4, reviewed_by = $5, reviewed_at = now()",
            params: &[&reason, &reviewer],
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Invitations of outside parties

/// An invitation found by its token.
#[derive(Debug, Clone)]
pub struct OpenInvitation {
    pub contract_id: i64,
    pub index: i32,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Why an invitation token does not open a slot.
fn invitation_error(r: Option<&tokio_postgres::Row>) -> StoreError {
    match r {
        None => StoreError::NotFound("invitation"),
        Some(r) => {
            let redeemed: bool = r.get(0);
            StoreError::Changed(if redeemed {
                "this invitation was already used (each link works once): log in instead"
            } else {
                "this invitation has expired: ask the contract's initiator for a new one"
            })
        }
    }
}

/// An invitation opens a slot only while its contract is being signed: a
/// refused, rejected or decided contract's links are dead (no account is
/// made for them, no slot taken). Security review H19.
async fn contract_signing<C: GenericClient + Sync>(
    c: &C,
    contract_id: i64,
) -> Result<(), StoreError> {
    let open = c
        .query_opt(
            "SELECT 1 FROM workflow.contracts WHERE id = $1 AND status::text = 'signing'",
            &[&contract_id],
        )
        .await?
        .is_some();
    if open {
        Ok(())
    } else {
        Err(StoreError::Changed(
            "this invitation's contract is no longer being signed",
        ))
    }
}

/// The open (unredeemed, unexpired) invitation with this token hash.
pub async fn invitation<C: GenericClient + Sync>(
    c: &C,
    token_hash: &[u8],
) -> Result<OpenInvitation, StoreError> {
    let r = c
        .query_opt(
            "SELECT redeemed_at IS NOT NULL, expires_at <= now(), contract_id, idx, email, phone
               FROM workflow.contract_invitations WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    let inv = match r {
        Some(r) if !r.get::<_, bool>(0) && !r.get::<_, bool>(1) => OpenInvitation {
            contract_id: r.get(2),
            index: r.get(3),
            email: r.get(4),
            phone: r.get(5),
        },
        r => return Err(invitation_error(r.as_ref())),
    };
    contract_signing(c, inv.contract_id).await?;
    Ok(inv)
}

/// Claim the open invitation with this token hash for one registration for
/// `lease_s` seconds (guarded in SQL: of registrations racing on one link,
/// one claims it and the others are refused here, before any password
/// work). [`release_invitation`] frees it when the registration fails; a
/// crash frees it when the lease lapses.
pub async fn claim_invitation<C: GenericClient + Sync>(
    c: &C,
    token_hash: &[u8],
    lease_s: f64,
) -> Result<OpenInvitation, StoreError> {
    let r = c
        .query_opt(
            "UPDATE workflow.contract_invitations
                SET claimed_until = now() + make_interval(secs => $2)
              WHERE token_hash = $1 AND redeemed_at IS NULL AND expires_at > now()
                AND (claimed_until IS NULL OR claimed_until <= now())
                AND EXISTS (SELECT 1 FROM workflow.contracts k
                             WHERE k.id = contract_id AND k.status::text = 'signing')
              RETURNING contract_id, idx, email, phone",
            &[&token_hash, &lease_s],
        )
        .await?;
    if let Some(r) = r {
        return Ok(OpenInvitation {
            contract_id: r.try_get(0)?,
            index: r.try_get(1)?,
            email: r.try_get(2)?,
            phone: r.try_get(3)?,
        });
    }
    let why = c
        .query_opt(
            "SELECT redeemed_at IS NOT NULL, expires_at <= now(), contract_id
               FROM workflow.contract_invitations WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    match why {
        Some(r) if !r.try_get::<_, bool>(0)? && !r.try_get::<_, bool>(1)? => {
            // Live: its contract is no longer being signed, or another
            // registration holds it.
            contract_signing(c, r.try_get(2)?).await?;
            Err(StoreError::Changed(
                "this invitation is being redeemed by another registration",
            ))
        }
        r => Err(invitation_error(r.as_ref())),
    }
}

/// Free the claim of a registration that did not redeem the invitation.
pub async fn release_invitation<C: GenericClient + Sync>(
    c: &C,
    token_hash: &[u8],
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.contract_invitations SET claimed_until = NULL
          WHERE token_hash = $1 AND redeemed_at IS NULL",
        &[&token_hash],
    )
    .await?;
    Ok(())
}

/// Redeem the invitation with this token hash for `user_id`, once (guarded
/// in SQL): the slot becomes theirs. Refused when the user already has a
/// slot in the contract.
pub async fn redeem(
    tx: &Transaction<'_>,
    token_hash: &[u8],
    user_id: i64,
) -> Result<OpenInvitation, StoreError> {
    let r = tx
        .query_opt(
            "UPDATE workflow.contract_invitations SET redeemed_at = now(), redeemed_by = $2
              WHERE token_hash = $1 AND redeemed_at IS NULL AND expires_at > now()
              RETURNING contract_id, idx, email, phone",
            &[&token_hash, &user_id],
        )
        .await?;
    let Some(r) = r else {
        let why = tx
            .query_opt(
                "SELECT redeemed_at IS NOT NULL FROM workflow.contract_invitations WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
        return Err(invitation_error(why.as_ref()));
    };
    let inv = OpenInvitation {
        contract_id: r.get(0),
        index: r.get(1),
        email: r.get(2),
        phone: r.get(3),
    };
    contract_signing(tx, inv.contract_id).await?;
    let taken = tx
        .query_opt(
            "SELECT 1 FROM workflow.contract_signers WHERE contract_id = $1 AND user_id = $2",
            &[&inv.contract_id, &user_id],
        )
        .await?
        .is_some();
    if taken {
        return Err(StoreError::Changed(
            "you already have a signer's slot in this contract",
        ));
    }
    tx.execute(
        "UPDATE workflow.contract_signers SET user_id = $3
          WHERE contract_id = $1 AND idx = $2 AND user_id IS NULL",
        &[&inv.contract_id, &inv.index, &user_id],
    )
    .await?;
    Ok(inv)
}

/// A new outside signer's account (role `signer`, no organisation);
/// returns its id, or `None` when the username is taken.
pub async fn create_outside_signer(
    tx: &Transaction<'_>,
    username: &str,
    password_hash: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_opt(
            "INSERT INTO workflow.users (username, password_hash, role) VALUES ($1, $2, 'signer')
             ON CONFLICT DO NOTHING RETURNING id",
            &[&username, &password_hash],
        )
        .await?
        .map(|r| r.get(0)))
}
