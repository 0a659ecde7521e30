//! To-do inboxes: what waits for the caller, read from the features' own
//! tables (read-only): a reviewer's pending approvals (preservations
//! submitted for review, contracts awaiting review; never their own), a
//! signer's pending signatures, an institution's pending judicial requests.

use tokio_postgres::GenericClient;

use super::StoreError;
use crate::status::{ContractStatus, JudicialStatus, PreservationStatus, SignerStatus, Status};

/// Preservations of the reviewer's bank submitted for review.
pub const PRESERVATION_REVIEWS: &str = "preservation_reviews";
/// Contracts of the reviewer's bank whose signers all signed.
pub const CONTRACT_REVIEWS: &str = "contract_reviews";
/// Contracts where the caller's own signature is pending.
pub const CONTRACT_SIGNATURES: &str = "contract_signatures";
/// Judicial requests addressed to the caller's institution, not decided.
pub const JUDICIAL_REQUESTS: &str = "judicial_requests";

/// Every inbox kind.
pub const KINDS: &[&str] = &[
    PRESERVATION_REVIEWS,
    CONTRACT_REVIEWS,
    CONTRACT_SIGNATURES,
    JUDICIAL_REQUESTS,
];

/// Whose inbox: the caller's id, bank and institution.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub user: i64,
    pub tenant: Option<&'a str>,
    pub institution: Option<&'a str>,
}

/// One thing to do.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: &'static str,
    pub id: i64,
    pub number: String,
    /// A contract's title, a preservation's product, a request's kind.
    pub title: String,
    pub status: String,
    /// Since when it waits.
    pub since: time::OffsetDateTime,
}

/// The query of `kind` (`None`: no such kind): its select list yields id,
/// number, title, status, since; `$1` user, `$2` tenant, `$3` institution,
/// `$4` the status awaited, `$5` the cursor, `$6` the limit.
fn sql(kind: &str, count: bool) -> Option<(String, &'static str)> {
    let (select, from, status) = match kind {
        PRESERVATION_REVIEWS => (
            "p.id, p.number, pr.name, p.status::text, coalesce(p.submitted_at, p.updated_at)",
            "workflow.preservations p JOIN workflow.products pr ON pr.id = p.product_id
              WHERE p.tenant = $2 AND p.status::text = $4 AND p.created_by <> $1",
            PreservationStatus::Submitted.as_str(),
        ),
        CONTRACT_REVIEWS => (
            "k.id, k.number, k.title, k.status::text, k.updated_at",
            "workflow.contracts k
              WHERE k.tenant = $2 AND k.status::text = $4 AND k.created_by <> $1
                AND NOT EXISTS (SELECT 1 FROM workflow.contract_signers s
                                 WHERE s.contract_id = k.id AND s.user_id = $1)",
            ContractStatus::AwaitingReview.as_str(),
        ),
        CONTRACT_SIGNATURES => (
            "k.id, k.number, k.title, k.status::text, s.invited_at",
            "workflow.contract_signers s JOIN workflow.contracts k ON k.id = s.contract_id
              WHERE s.user_id = $1 AND s.status::text = $7 AND k.status::text = $4",
            ContractStatus::Signing.as_str(),
        ),
        JUDICIAL_REQUESTS => (
            "r.id, r.number, r.kind::text, r.status::text, r.created_at",
            "workflow.judicial_requests r
              WHERE r.institution_id = $3 AND (r.status::text = $4 OR r.status::text = $8)",
            JudicialStatus::Pending.as_str(),
        ),
        _ => return None,
    };
    let alias = select.split('.').next().unwrap_or("p");
    let q = if count {
        format!("SELECT count(*) FROM {from}")
    } else {
        format!(
            "SELECT {select} FROM {from} AND ($5::bigint IS NULL OR {alias}.id < $5)
              ORDER BY {alias}.id DESC LIMIT $6"
        )
    };
    Some((q, status))
}

fn kind_of(kind: &str) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| *k == kind)
}

/// How many items of `kind` wait for `owner`.
pub async fn count<C: GenericClient + Sync>(
    c: &C,
    kind: &str,
    owner: Owner<'_>,
) -> Result<i64, StoreError> {
    let (q, status) = sql(kind, true).ok_or(StoreError::NotFound("inbox"))?;
    let q = bind_unused(&q);
    Ok(c.query_one(
        &q,
        &[
            &owner.user,
            &owner.tenant,
            &owner.institution,
            &status,
            &None::<i64>,
            &0i64,
            &SignerStatus::Pending.as_str(),
            &JudicialStatus::InReview.as_str(),
        ],
    )
    .await?
    .get(0))
}

/// The items of `kind` waiting for `owner`, newest first, keyset-paged by
/// the record's id.
pub async fn items<C: GenericClient + Sync>(
    c: &C,
    kind: &str,
    owner: Owner<'_>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Item>, StoreError> {
    let k = kind_of(kind).ok_or(StoreError::NotFound("inbox"))?;
    let (q, status) = sql(kind, false).ok_or(StoreError::NotFound("inbox"))?;
    let q = bind_unused(&q);
    let rows = c
        .query(
            &q,
            &[
                &owner.user,
                &owner.tenant,
                &owner.institution,
                &status,
                &after,
                &limit,
                &SignerStatus::Pending.as_str(),
                &JudicialStatus::InReview.as_str(),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Item {
                kind: k,
                id: r.try_get(0)?,
                number: r.try_get(1)?,
                title: r.try_get(2)?,
                status: r.try_get(3)?,
                since: r.try_get(4)?,
            })
        })
        .collect()
}

/// Every statement binds the same eight parameters; PostgreSQL must know
/// the type of each, also of those a kind's query does not use: a no-op
/// clause names them all.
fn bind_unused(q: &str) -> String {
    let typed = "($1::bigint IS NULL AND $2::text IS NULL AND $3::text IS NULL AND $4::text IS NULL
                  AND $5::bigint IS NULL AND $6::bigint IS NULL AND $7::text IS NULL AND $8::text IS NULL) IS NOT NULL";
    match q.find(" ORDER BY ") {
        Some(i) => format!("{} AND {typed}{}", &q[..i], &q[i..]),
        None => format!("{q} AND {typed}"),
    }
}
