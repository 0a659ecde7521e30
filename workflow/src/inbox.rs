//! To-do inboxes (issue 15): what waits for the caller, with counts per
//! kind (`GET /v1/inbox`) and the items of one kind, paged (`GET
//! /v1/inbox/{kind}`). The queries are `store/inbox.rs` (read-only); each
//! is bounded by the caller's own bank, institution or signer slots, so no
//! inbox shows another organisation's records.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::authz::{Caller, Role};
use crate::error::{ApiError, Path, Query};
use crate::paging::{Page, Paged};
use crate::store::inbox::{self, Owner};
use crate::{Workflow, ts};

/// The inbox kinds a role has.
fn kinds_of(role: Role) -> &'static [&'static str] {
    match role {
        Role::Reviewer => &[
            inbox::PRESERVATION_REVIEWS,
            inbox::CONTRACT_REVIEWS,
            inbox::CONTRACT_SIGNATURES,
        ],
        Role::User | Role::Signer => &[inbox::CONTRACT_SIGNATURES],
        Role::Institution => &[inbox::JUDICIAL_REQUESTS],
        Role::Admin | Role::OrgAdmin => &[],
    }
}

fn owner(caller: &Caller) -> Owner<'_> {
    Owner {
        user: caller.id,
        tenant: caller.tenant.as_deref(),
        institution: caller.institution_id.as_deref(),
    }
}

/// The caller's inbox: how many items of each of their kinds wait.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxSummary {
    /// Per kind: `preservation_reviews`, `contract_reviews` (reviewers),
    /// `contract_signatures` (signers), `judicial_requests` (institutions).
    pub counts: BTreeMap<String, i64>,
    pub total: i64,
}

/// Your to-do inbox: counts per kind.
#[utoipa::path(get, path = "/v1/inbox", responses((status = 200, body = InboxSummary)))]
pub async fn summary(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
) -> Result<axum::Json<InboxSummary>, ApiError> {
    let c = wf.db().await?;
    let mut counts = BTreeMap::new();
    for kind in kinds_of(caller.role) {
        counts.insert(
            (*kind).to_owned(),
            inbox::count(c.client(), kind, owner(&caller)).await?,
        );
    }
    Ok(axum::Json(InboxSummary {
        total: counts.values().sum(),
        counts,
    }))
}

/// One thing to do.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItem {
    pub kind: String,
    /// The record's id (and the paging cursor).
    pub id: i64,
    /// `BQ…`, `HT…` or `SF…`.
    pub number: String,
    /// A contract's title, a preservation's product, a request's kind.
    pub title: String,
    pub status: String,
    /// Since when it waits, RFC 3339.
    pub since: String,
    /// The record in the API.
    pub href: String,
}

/// The items of one kind of your inbox, newest first, paged (`limit`,
/// `after`).
#[utoipa::path(get, path = "/v1/inbox/{kind}", params(("kind" = String, Path), Page), responses(
    (status = 200, body = [InboxItem], headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page"))),
    (status = 403, description = "`forbidden`: not a kind of your role's inbox", body = crate::error::ErrorBody),
    (status = 404, description = "`not_found`: no such kind", body = crate::error::ErrorBody),
))]
pub async fn items(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(kind): Path<String>,
    query: Result<Query<Page>, ApiError>,
) -> Result<Paged<InboxItem>, ApiError> {
    if !inbox::KINDS.contains(&kind.as_str()) {
        return Err(ApiError::not_found("inbox kind"));
    }
    if !kinds_of(caller.role).contains(&kind.as_str()) {
        return Err(ApiError::forbidden(format!(
            "{kind} is not in the inbox of a {}",
            caller.role.as_str()
        )));
    }
    let Query(page) = query?;
    let page = page.checked()?;
    let c = wf.db().await?;
    let list = inbox::items(c.client(), &kind, owner(&caller), page.after, page.limit).await?;
    let base = match kind.as_str() {
        inbox::PRESERVATION_REVIEWS => "/v1/preservations",
        inbox::JUDICIAL_REQUESTS => "/v1/judicial-requests",
        _ => "/v1/contracts",
    };
    Ok(Paged::new(
        list.into_iter()
            .map(|i| InboxItem {
                kind: i.kind.to_owned(),
                href: format!("{base}/{}", i.id),
                id: i.id,
                number: i.number,
                title: i.title,
                status: i.status,
                since: ts(i.since),
            })
            .collect(),
        page,
        |i| i.id,
    ))
}
