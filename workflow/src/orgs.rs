//! Organisations as data (issue 15): banks and enterprises (each maps to
//! its ledger tenant), notary offices and courts, created and managed by
//! the administrator, with their users. Disabling an organisation stops
//! its users' logins and revokes their sessions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{NewUser, UserJson, get_user, user_json, valid_tenant};
use crate::authz::{Caller, Require, Role, roles};
use crate::error::{ApiError, Json, Path, Query};
use crate::paging::{Page, Paged};
use crate::store::{orgs, users};
use crate::{Workflow, ts, ts_opt};

pub use crate::store::orgs::KINDS;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationJson {
    pub id: i64,
    /// `bank`, `enterprise`, `notary` or `court`.
    pub kind: String,
    pub name: String,
    /// The ledger tenant of a bank or enterprise.
    pub tenant: Option<String>,
    /// The institution id of a notary office or court (`/v1/institutions`).
    pub institution_id: Option<String>,
    /// The notarization fee of a notary office or court, fen.
    pub fee_cents: Option<i64>,
    /// False once disabled: its users cannot log in.
    pub enabled: bool,
    pub disabled_at: Option<String>,
    /// Users of the organisation.
    pub users: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn org_json(o: orgs::Organisation) -> OrganisationJson {
    OrganisationJson {
        id: o.id,
        kind: o.kind,
        name: o.name,
        tenant: o.tenant,
        institution_id: o.institution_id,
        fee_cents: o.fee_cents,
        enabled: o.disabled_at.is_none(),
        disabled_at: ts_opt(o.disabled_at),
        users: o.users,
        created_at: ts(o.created_at),
        updated_at: ts(o.updated_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    /// `bank`, `enterprise`, `notary` or `court`.
    pub kind: String,
    /// 1-200 characters, no control characters.
    pub name: String,
    /// A bank's or enterprise's ledger tenant (1-64 of `[A-Za-z0-9._-]`;
    /// one of `ingest.tenants` for its evidence to reach the ledger).
    pub tenant: Option<String>,
    /// A notary office's or court's institution id (1-64 of `[a-z0-9._-]`).
    pub institution_id: Option<String>,
    /// A notary office's or court's fee, fen.
    pub fee_cents: Option<i64>,
}

fn name_problem(n: &str) -> Option<&'static str> {
    let len = n.chars().count();
    if len == 0 || len > 200 || n.chars().any(crate::text::unfit_in_name) {
        Some("1-200 characters, no control characters or bidirectional overrides")
    } else {
        None
    }
}

/// Create an organisation (administrators). A notary office or court is
/// also an institution (`/v1/institutions`).
#[utoipa::path(post, path = "/v1/organisations", request_body = NewOrganisation, responses(
    (status = 201, body = OrganisationJson),
    (status = 409, description = "`conflict`: the tenant or institution id has an organisation", body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(n): Json<NewOrganisation>,
) -> Result<(StatusCode, axum::Json<OrganisationJson>), ApiError> {
    let mut errs = std::collections::BTreeMap::new();
    if let Some(why) = name_problem(&n.name) {
        errs.insert("name".to_owned(), why.to_owned());
    }
    let by_tenant = n.kind == "bank" || n.kind == "enterprise";
    let by_institution = n.kind == "notary" || n.kind == "court";
    if !by_tenant && !by_institution {
        errs.insert("kind".into(), "bank, enterprise, notary or court".into());
    }
    if by_tenant {
        match &n.tenant {
            Some(t) if valid_tenant(t) => {}
            _ => {
                errs.insert(
                    "tenant".into(),
                    "a bank or enterprise needs its ledger tenant (1-64 of [A-Za-z0-9._-])".into(),
                );
            }
        }
        if n.institution_id.is_some() || n.fee_cents.is_some() {
            errs.insert(
                "institution_id".into(),
                "only notary offices and courts have an institution id and a fee".into(),
            );
        }
    }
    if by_institution {
        match &n.institution_id {
            Some(i) if valid_tenant(i) && !i.bytes().any(|b| b.is_ascii_uppercase()) => {}
            _ => {
                errs.insert(
                    "institution_id".into(),
                    "a notary office or court needs an institution id (1-64 of [a-z0-9._-])".into(),
                );
            }
        }
        if n.tenant.is_some() {
            errs.insert(
                "tenant".into(),
                "only banks and enterprises have a tenant".into(),
            );
        }
        if n.fee_cents.is_some_and(|f| f < 0) {
            errs.insert("fee_cents".into(), "must not be negative".into());
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let id = match (&n.tenant, &n.institution_id) {
        (Some(t), _) => orgs::create_tenant_org(&*tx, &n.kind, &n.name, t).await?,
        (_, Some(i)) => {
            orgs::create_institution_org(&tx, &n.kind, &n.name, i, n.fee_cents.unwrap_or(0)).await?
        }
        _ => return Err(ApiError::internal()),
    };
    let o = orgs::get(&*tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(org_json(o))))
}

/// `kind`, `limit` and `after` of the organisation list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// Only organisations of this kind.
    pub kind: Option<String>,
    /// Items in the page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the organisation with this id.
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

/// Organisations (administrators), newest first, paged.
#[utoipa::path(get, path = "/v1/organisations", params(OrgQuery), responses(
    (status = 200, body = [OrganisationJson], headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page"))),
))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Query(q): Query<OrgQuery>,
) -> Result<Paged<OrganisationJson>, ApiError> {
    crate::error::one_of("kind", &q.kind, KINDS)?;
    let page = Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let c = wf.db().await?;
    let list = orgs::list(c.client(), q.kind.as_deref(), page.after, page.limit).await?;
    Ok(Paged::new(
        list.into_iter().map(org_json).collect(),
        page,
        |o| o.id,
    ))
}

/// May `caller` read organisation `id`? Administrators read all; others
/// only their own.
fn may_read(caller: &Caller, id: i64) -> Result<(), ApiError> {
    if caller.role == Role::Admin || caller.organisation_id == Some(id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only administrators and its own members read an organisation",
        ))
    }
}

/// An organisation (administrators; members: their own).
#[utoipa::path(get, path = "/v1/organisations/{id}", params(("id" = i64, Path)), responses(
    (status = 200, body = OrganisationJson),
))]
pub async fn get(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<OrganisationJson>, ApiError> {
    may_read(&caller, id)?;
    let c = wf.db().await?;
    Ok(axum::Json(org_json(orgs::get(c.client(), id).await?)))
}

/// A change of an organisation: its name, and a notary office's or court's
/// fee. Its kind and tenant never change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationPatch {
    pub name: Option<String>,
    pub fee_cents: Option<i64>,
}

/// Edit an organisation (administrators).
#[utoipa::path(patch, path = "/v1/organisations/{id}", params(("id" = i64, Path)), request_body = OrganisationPatch, responses(
    (status = 200, body = OrganisationJson),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn patch(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
    body: Result<Json<OrganisationPatch>, ApiError>,
) -> Result<axum::Json<OrganisationJson>, ApiError> {
    let mut c = wf.db().await?;
    let o = orgs::get(c.client(), id).await?;
    let Json(p) = body?;
    let mut errs = std::collections::BTreeMap::new();
    if let Some(why) = p.name.as_deref().and_then(name_problem) {
        errs.insert("name".to_owned(), why.to_owned());
    }
    match p.fee_cents {
        Some(_) if o.institution_id.is_none() => {
            errs.insert(
                "fee_cents".into(),
                "only notary offices and courts have a fee".into(),
            );
        }
        Some(f) if f < 0 => {
            errs.insert("fee_cents".into(), "must not be negative".into());
        }
        _ => {}
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let tx = c.transaction().await?;
    orgs::update(&tx, id, p.name.as_deref(), p.fee_cents).await?;
    let o = orgs::get(&*tx, id).await?;
    tx.commit().await?;
    Ok(axum::Json(org_json(o)))
}

async fn set_disabled(
    wf: &Workflow,
    id: i64,
    disabled: bool,
) -> Result<axum::Json<OrganisationJson>, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let revoked = orgs::set_disabled(&tx, id, disabled).await?;
    let o = orgs::get(&*tx, id).await?;
    tx.commit().await?;
    if disabled {
        tracing::info!(
            organisation = id,
            sessions = revoked,
            "organisation disabled"
        );
    }
    Ok(axum::Json(org_json(o)))
}

/// Disable an organisation (administrators): its users cannot log in and
/// every session of theirs is revoked; its records stay.
#[utoipa::path(post, path = "/v1/organisations/{id}/disable", params(("id" = i64, Path)), responses(
    (status = 200, body = OrganisationJson),
))]
pub async fn disable(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
) -> Result<axum::Json<OrganisationJson>, ApiError> {
    set_disabled(&wf, id, true).await
}

/// Enable a disabled organisation again (administrators): its users (but
/// those disabled one by one) log in again.
#[utoipa::path(post, path = "/v1/organisations/{id}/enable", params(("id" = i64, Path)), responses(
    (status = 200, body = OrganisationJson),
))]
pub async fn enable(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
) -> Result<axum::Json<OrganisationJson>, ApiError> {
    set_disabled(&wf, id, false).await
}

/// An organisation's users (administrators; organisation administrators
/// and a bank's reviewers: their own organisation's), newest first, paged.
#[utoipa::path(get, path = "/v1/organisations/{id}/users", params(("id" = i64, Path), Page), responses(
    (status = 200, body = [UserJson], headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page"))),
))]
pub async fn list_users(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserReaders>,
    Path(id): Path<i64>,
    query: Result<Query<Page>, ApiError>,
) -> Result<Paged<UserJson>, ApiError> {
    may_read(&caller, id)?;
    let Query(page) = query?;
    let page = page.checked()?;
    let c = wf.db().await?;
    orgs::get(c.client(), id).await?;
    let list = users::list(c.client(), None, Some(id), page.after, page.limit).await?;
    Ok(Paged::new(
        list.into_iter().map(user_json).collect(),
        page,
        |u| u.id,
    ))
}

/// Create a user of this organisation (administrators; organisation
/// administrators: of their own, at most an organisation administrator):
/// the body of `POST /v1/users` without `organisation_id`, `tenant` or
/// `institution_id`.
#[utoipa::path(post, path = "/v1/organisations/{id}/users", params(("id" = i64, Path)), request_body = NewUser, responses(
    (status = 201, body = UserJson),
    (status = 403, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create_user(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Path(id): Path<i64>,
    body: Result<Json<NewUser>, ApiError>,
) -> Result<(StatusCode, axum::Json<UserJson>), ApiError> {
    caller.may_manage_users_of(Some(id))?;
    {
        let c = wf.db().await?;
        orgs::get(c.client(), id).await?;
    }
    let Json(mut u) = body?;
    if u.organisation_id.is_some_and(|o| o != id) {
        return Err(ApiError::field(
            "organisation_id",
            "the organisation is the one of the path",
        ));
    }
    u.organisation_id = Some(id);
    crate::auth::scope_new_user(&caller, &mut u)?;
    let uid = crate::auth::create_user(&wf, &u).await?;
    let c = wf.db().await?;
    Ok((StatusCode::CREATED, axum::Json(get_user(&c, uid).await?)))
}
