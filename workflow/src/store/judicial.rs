//! Judicial requests (notarization, ruling): every SQL statement on
//! `workflow.judicial_requests` and `workflow.institutions` reads of this
//! feature, and the request's status transitions (through
//! [`crate::status::transition`]).

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;
use crate::status::{self, Actor, Change, JudicialStatus, Status};

type Time = time::OffsetDateTime;

/// The states an institution acts on (compare, certify, refuse).
pub const OPEN: &[JudicialStatus] = &[JudicialStatus::Pending, JudicialStatus::InReview];

/// The evidence file handed over with a request.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub name: String,
    pub size: i64,
    pub sha256: String,
    pub sm3: Option<String>,
}

/// How the applicant hands the evidence over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The applicant attaches (uploads) the file.
    Attached,
    /// The applicant authorises the institution to read the preserved file
    /// (or the contract's body).
    Authorised,
}

impl Handover {
    pub fn as_str(self) -> &'static str {
        match self {
            Handover::Attached => "attached",
            Handover::Authorised => "authorised",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "attached" => Some(Handover::Attached),
            "authorised" => Some(Handover::Authorised),
            _ => None,
        }
    }
}

/// A judicial request as stored.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: i64,
    pub number: String,
    pub kind: String,
    pub tenant: String,
    pub subject_kind: String,
    pub subject_id: i64,
    pub institution_id: String,
    pub institution_name: String,
    pub fee_cents: Option<i64>,
    pub case_description: Option<String>,
    pub purpose: Option<String>,
    pub status: JudicialStatus,
    pub refuse_reason: Option<String>,
    pub comparison: Option<serde_json::Value>,
    pub certificate_sha256: Option<String>,
    pub certificate_size: Option<i64>,
    pub created_by: i64,
    pub created_at: Time,
    pub decided_at: Option<Time>,
    pub certificate_submission_id: Option<i64>,
    pub handover: Option<Handover>,
    /// The attached file, once uploaded.
    pub evidence: Option<Evidence>,
}

const COLUMNS: &str =
    "r.id, r.number, r.kind, r.tenant, r.subject_kind, r.subject_id, r.institution_id, i.name,
    r.fee_cents, r.case_description, r.purpose, r.status, r.refuse_reason, r.comparison,
    r.certificate_sha256, r.certificate_size, r.created_by, r.created_at, r.decided_at,
    r.certificate_submission_id, r.evidence, r.evidence_name, r.evidence_size, r.evidence_sha256,
    r.evidence_sm3";

fn from_row(r: &tokio_postgres::Row) -> Result<Request, StoreError> {
    let status: String = r.try_get(11)?;
    let status = JudicialStatus::parse(&status)
        .ok_or_else(|| StoreError::Inconsistent(format!("unknown judicial status {status:?}")))?;
    let handover =
        match r.try_get::<_, Option<String>>(20)? {
            Some(h) => Some(Handover::parse(&h).ok_or_else(|| {
                StoreError::Inconsistent(format!("unknown evidence handover {h:?}"))
            })?),
            None => None,
        };
    let evidence = match r.try_get::<_, Option<String>>(23)? {
        Some(sha256) => Some(Evidence {
            name: r.try_get::<_, Option<String>>(21)?.unwrap_or_default(),
            size: r.try_get::<_, Option<i64>>(22)?.unwrap_or(0),
            sha256,
            sm3: r.try_get(24)?,
        }),
        None => None,
    };
    Ok(Request {
        id: r.try_get(0)?,
        number: r.try_get(1)?,
        kind: r.try_get(2)?,
        tenant: r.try_get(3)?,
        subject_kind: r.try_get(4)?,
        subject_id: r.try_get(5)?,
        institution_id: r.try_get(6)?,
        institution_name: r.try_get(7)?,
        fee_cents: r.try_get(8)?,
        case_description: r.try_get(9)?,
        purpose: r.try_get(10)?,
        status,
        refuse_reason: r.try_get(12)?,
        comparison: r.try_get(13)?,
        certificate_sha256: r.try_get(14)?,
        certificate_size: r.try_get(15)?,
        created_by: r.try_get(16)?,
        created_at: r.try_get(17)?,
        decided_at: r.try_get(18)?,
        certificate_submission_id: r.try_get(19)?,
        handover,
        evidence,
    })
}

/// The request `id`.
pub async fn get<C: GenericClient + Sync>(c: &C, id: i64) -> Result<Request, StoreError> {
    let r = c
        .query_opt(
            &format!(
                "SELECT {COLUMNS}
                   FROM workflow.judicial_requests r JOIN workflow.institutions i ON i.id = r.institution_id
                  WHERE r.id = $1"
            ),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("judicial request"))?;
    from_row(&r)
}

/// What a request list selects.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub tenant: Option<&'a str>,
    pub institution: Option<&'a str>,
    pub status: Option<JudicialStatus>,
    pub kind: Option<&'a str>,
    pub after: Option<i64>,
    pub limit: i64,
}

/// Requests matching `f`, newest first.
pub async fn list<C: GenericClient + Sync>(
    c: &C,
    f: &Filter<'_>,
) -> Result<Vec<Request>, StoreError> {
    let status = f.status.map(|s| s.as_str());
    c.query(
        &format!(
            "SELECT {COLUMNS}
               FROM workflow.judicial_requests r JOIN workflow.institutions i ON i.id = r.institution_id
              WHERE ($1::text IS NULL OR r.tenant = $1) AND ($2::text IS NULL OR r.institution_id = $2)
                AND ($3::text IS NULL OR r.status = $3) AND ($4::text IS NULL OR r.kind = $4)
                AND ($5::bigint IS NULL OR r.id < $5)
              ORDER BY r.id DESC LIMIT $6"
        ),
        &[&f.tenant, &f.institution, &status, &f.kind, &f.after, &f.limit],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// An institution's kind (`notary`, `court`), fee, and whether its
/// organisation is disabled, if it exists.
pub async fn institution<C: GenericClient + Sync>(
    c: &C,
    id: &str,
) -> Result<Option<(String, i64, bool)>, StoreError> {
    Ok(c.query_opt(
        "SELECT i.kind, i.fee_cents, o.disabled_at IS NOT NULL
           FROM workflow.institutions i
           LEFT JOIN workflow.organisations o ON o.institution_id = i.id
          WHERE i.id = $1",
        &[&id],
    )
    .await?
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get::<_, Option<bool>>(2).unwrap_or(false),
        )
    }))
}

/// A request's subject (a preservation or a contract) as this feature
/// needs it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub tenant: String,
    /// Its status as stored (`on_chain` when sealed).
    pub status: String,
    /// The channels its product offers (contracts: both).
    pub channels: Vec<String>,
    pub submission_id: Option<i64>,
}

/// The subject `kind`/`id`, if it exists.
pub async fn subject<C: GenericClient + Sync>(
    c: &C,
    kind: &str,
    id: i64,
) -> Result<Option<Subject>, StoreError> {
    let row = match kind {
        "preservation" => {
            c.query_opt(
                "SELECT p.tenant, p.status, pr.channels, p.submission_id
                   FROM workflow.preservations p JOIN workflow.products pr ON pr.id = p.product_id
                  WHERE p.id = $1",
                &[&id],
            )
            .await?
        }
        "contract" => {
            c.query_opt(
                "SELECT tenant, status, ARRAY['notarization', 'judicial_ruling']::text[], submission_id
                   FROM workflow.contracts WHERE id = $1",
                &[&id],
            )
            .await?
        }
        _ => None,
    };
    Ok(row.map(|r| Subject {
        tenant: r.get(0),
        status: r.get(1),
        channels: r.get(2),
        submission_id: r.get(3),
    }))
}

/// A new request's stored parts.
#[derive(Debug)]
pub struct NewRequest<'a> {
    pub kind: &'a str,
    pub tenant: &'a str,
    pub subject_kind: &'a str,
    pub subject_id: i64,
    pub institution_id: &'a str,
    pub fee_cents: Option<i64>,
    pub case_description: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub created_by: i64,
    pub handover: Option<Handover>,
}

/// Insert a request (status `pending`); returns its id.
pub async fn create(tx: &Transaction<'_>, n: &NewRequest<'_>) -> Result<i64, StoreError> {
    Ok(tx
        .query_one(
            "INSERT INTO workflow.judicial_requests
                (kind, tenant, subject_kind, subject_id, institution_id, fee_cents, case_description, purpose,
                 created_by, evidence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &n.kind,
                &n.tenant,
                &n.subject_kind,
                &n.subject_id,
                &n.institution_id,
                &n.fee_cents,
                &n.case_description,
                &n.purpose,
                &n.created_by,
                &n.handover.map(Handover::as_str),
            ],
        )
        .await?
        .get(0))
}

/// Attach the evidence file to a pending request that hands it over
/// attached (guarded in SQL); returns the previous file's SHA-256, if one
/// was replaced.
pub async fn attach_evidence(
    tx: &Transaction<'_>,
    id: i64,
    e: &Evidence,
) -> Result<Option<String>, StoreError> {
    let pending = [JudicialStatus::Pending];
    let previous = tx
        .query_opt(
            "SELECT evidence_sha256 FROM workflow.judicial_requests
              WHERE id = $1 AND status = ANY($2) AND evidence = $3 FOR UPDATE",
            &[&id, &status::strs(&pending), &Handover::Attached.as_str()],
        )
        .await?;
    let Some(previous) = previous else {
        let r = get(tx, id).await?;
        if r.handover != Some(Handover::Attached) {
            return Err(StoreError::Changed(
                "this request does not hand its evidence over as an attached file",
            ));
        }
        return Err(status::conflict_error(tx, id, "attaching the evidence", &pending).await);
    };
    tx.execute(
        "UPDATE workflow.judicial_requests
            SET evidence_name = $2, evidence_size = $3, evidence_sha256 = $4, evidence_sm3 = $5, updated_at = now()
          WHERE id = $1",
        &[&id, &e.name, &e.size, &e.sha256, &e.sm3],
    )
    .await?;
    Ok(previous.get(0))
}

/// `pending → in_review` (audited).
pub async fn start_review(tx: &Transaction<'_>, by: Actor<'_>, id: i64) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        &[JudicialStatus::Pending],
        JudicialStatus::InReview,
        "starting the review",
        Change::default(),
    )
    .await?;
    Ok(())
}

/// Record a comparison on an open request (it is then `in_review`),
/// guarded in SQL: a request decided meanwhile keeps its comparison.
pub async fn record_comparison(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    comparison: &serde_json::Value,
    result: &str,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        OPEN,
        JudicialStatus::InReview,
        "comparing",
        Change {
            set: ", comparison = $4",
            params: &[comparison],
            note: Some(&format!("comparison: {result}")),
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}

/// An open request → `certified` with its certificate file (audited).
pub async fn certify(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    decided_by: i64,
    sha256: &str,
    size: i64,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        OPEN,
        JudicialStatus::Certified,
        "certifying",
        Change {
            set: ", certificate_sha256 = $4, certificate_size = $5, decided_by = $6, decided_at = now()",
            params: &[&sha256, &size, &decided_by],
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}

/// Link a certified request to its certificate's evidence submission.
pub async fn set_certificate_submission(
    tx: &Transaction<'_>,
    id: i64,
    submission: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workflow.judicial_requests SET certificate_submission_id = $2 WHERE id = $1",
        &[&id, &submission],
    )
    .await?;
    Ok(())
}

/// An open request → `refused` with a reason (audited).
pub async fn refuse(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    decided_by: i64,
    reason: &str,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        OPEN,
        JudicialStatus::Refused,
        "refusing",
        Change {
            set: ", refuse_reason = $4, decided_by = $5, decided_at = now()",
            params: &[&reason, &decided_by],
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}
