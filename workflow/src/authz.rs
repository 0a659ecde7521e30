//! Who is calling and what their role allows: the four roles, the
//! session's [`Caller`] and the [`Require`] extractor every route
//! authorises with, before its body is read. Login, passwords and users
//! are `auth.rs`; this module writes nothing (it has no audit dependency,
//! so the audit log and every feature can use it without an import loop).
//!
//! A session token is 32 random bytes, base64url, handed to the client once;
//! the database keeps only its SHA-256, so a leaked table grants nothing.
//! Every request is authorised here — its session ([`Caller`]) and, before
//! its body is read, the roles its route allows ([`Require`]) — and in each
//! handler against the record it touches (tenant, institution, creator).

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Workflow;
use crate::error::ApiError;

/// The roles (docs/workflow-api.md, "Roles").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Platform administrator: products, contract types, users,
    /// institutions, audit, monitoring.
    Admin,
    /// An organisation's administrator: manages the users of their own
    /// organisation (any kind) and nothing else; never above this role.
    OrgAdmin,
    /// A bank's (enterprise's) reviewer: approves its own bank's records.
    Reviewer,
    /// A preservation user (a customer or business department of a bank).
    User,
    /// A judicial institution (notary office or court).
    Institution,
    /// An outside party who signs contracts (registered by redeeming a
    /// contract invitation): reads and signs only the contracts they are a
    /// signer of.
    Signer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::OrgAdmin => "org_admin",
            Role::Reviewer => "reviewer",
            Role::User => "user",
            Role::Institution => "institution",
            Role::Signer => "signer",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "org_admin" => Some(Role::OrgAdmin),
            "reviewer" => Some(Role::Reviewer),
            "user" => Some(Role::User),
            "institution" => Some(Role::Institution),
            "signer" => Some(Role::Signer),
            _ => None,
        }
    }
}

/// The authenticated user of a request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Caller {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The bank of reviewers and users.
    pub tenant: Option<String>,
    /// The institution of institution users.
    pub institution_id: Option<String>,
    /// The caller's organisation (none for administrators).
    pub organisation_id: Option<i64>,
    /// An administrator reset the password: until the user changes it
    /// (`PUT /v1/me/password`), every other route answers 403
    /// `password_change_required`.
    pub must_change_password: bool,
}

impl Caller {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this action needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// May this caller read a record of `tenant`? Administrators read all;
    /// reviewers and users only their own bank's.
    pub fn can_read_tenant(&self, tenant: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Reviewer | Role::User => self.tenant.as_deref() == Some(tenant),
            Role::OrgAdmin | Role::Institution | Role::Signer => false,
        }
    }

    /// May this caller manage the users of organisation `org` (create,
    /// edit, disable, reset passwords, revoke sessions)? Administrators:
    /// every user; organisation administrators: their own organisation's
    /// only (403 otherwise, and for users of no organisation).
    pub fn may_manage_users_of(&self, org: Option<i64>) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::OrgAdmin if org.is_some() && org == self.organisation_id => Ok(()),
            _ => Err(ApiError::forbidden(
                "this user belongs to another organisation",
            )),
        }
    }

    pub fn tenant(&self) -> Result<&str, ApiError> {
        self.tenant
            .as_deref()
            .ok_or_else(|| ApiError::forbidden("this action needs a bank user"))
    }
}

/// A set of roles, as a type: the `R` of [`Require<R>`].
pub trait Roles: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

/// The role sets routes allow (the roles table of `docs/workflow-api.md`).
pub mod roles {
    use super::{Role, Roles};

    macro_rules! role_sets {
        ($($(#[$doc:meta])* $name:ident = [$($role:ident),+];)*) => {$(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Roles for $name {
                const ROLES: &'static [Role] = &[$(Role::$role),+];
            }
        )*};
    }

    role_sets! {
        /// Administrators.
        Admin = [Admin];
        /// Whoever manages users: administrators (all), organisation
        /// administrators (their organisation's).
        UserAdmins = [Admin, OrgAdmin];
        /// Whoever lists users: administrators (all), organisation
        /// administrators (their organisation's), reviewers (their bank's).
        UserReaders = [Admin, OrgAdmin, Reviewer];
        /// Administrators (all banks) and reviewers (their bank).
        AdminOrReviewer = [Admin, Reviewer];
        /// A bank's users and reviewers: creators, signers.
        Bank = [User, Reviewer];
        /// Administrators (all banks), reviewers and users (their bank).
        AdminOrBank = [Admin, Reviewer, User];
        /// Reviewers.
        Reviewer = [Reviewer];
        /// Notary offices and courts.
        Institution = [Institution];
        /// Whoever may sign contracts: bank users and reviewers, outside
        /// signers (contracts, H8).
        Signers = [User, Reviewer, Signer];
        /// Contract lists: administrators, bank users, outside signers.
        AdminOrSigner = [Admin, Reviewer, User, Signer];
    }
}

/// The caller of a route that only the roles `R` may use. It is extracted
/// from the request's head; put first (after `State`), it answers 403 (as
/// [`Caller::require`], and audited as such) before the path, query or body
/// is read, so a caller of another role learns nothing from their
/// validation. Record-level checks (tenant, creator, signer, addressed
/// institution) stay in the handlers, which take the body as
/// `Result<Json<T>, ApiError>` (or `Result<Multipart, ApiError>`) and answer
/// its problems only after the check.
#[derive(Debug)]
pub struct Require<R>(pub Caller, pub PhantomData<R>);

impl<R: Roles> FromRequestParts<Arc<Workflow>> for Require<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        wf: &Arc<Workflow>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, wf).await?;
        caller.require(R::ROLES)?;
        Ok(Require(caller, PhantomData))
    }
}

/// Hash the token's bytes for storage.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    crate::sha256(token.as_bytes()).to_vec()
}

pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Resolve a token to its user; `Err` says why not.
pub(crate) async fn resolve(wf: &Workflow, token: &str) -> Result<Caller, ApiError> {
    let c = wf.db().await?;
    let session = crate::store::users::session(c.client(), &token_hash(token)).await?;
    drop(c);
    let Some(s) = session else {
        return Err(ApiError::unauthenticated("unknown session token"));
    };
    if s.revoked {
        return Err(ApiError::unauthenticated(
            "the session was logged out or revoked",
        ));
    }
    if s.user_disabled {
        return Err(ApiError::unauthenticated("the account is disabled"));
    }
    if s.organisation_disabled {
        return Err(ApiError::unauthenticated(
            "the account's organisation is disabled",
        ));
    }
    if s.expired {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session has expired; log in again",
        ));
    }
    Ok(Caller {
        id: s.id,
        username: s.username,
        role: Role::parse(&s.role).ok_or_else(ApiError::internal)?,
        tenant: s.tenant,
        institution_id: s.institution_id,
        organisation_id: s.organisation_id,
        must_change_password: s.must_change_password,
    })
}

/// The routes a user whose password was reset may still use: who am I,
/// change the password, log out.
const WHILE_PASSWORD_RESET: &[(&str, &str)] = &[
    ("GET", "/v1/me"),
    ("PUT", "/v1/me/password"),
    ("POST", "/v1/auth/logout"),
];

/// 403 `password_change_required` for a caller who must change their
/// password first, on any other route.
fn password_gate(caller: &Caller, parts: &Parts) -> Result<(), ApiError> {
    if !caller.must_change_password {
        return Ok(());
    }
    let path = parts.uri.path();
    let method = parts.method.as_str();
    if WHILE_PASSWORD_RESET
        .iter()
        .any(|(m, p)| *m == method && *p == path)
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "password_change_required",
        "an administrator reset your password: change it first (PUT /v1/me/password)",
    ))
}

impl FromRequestParts<Arc<Workflow>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        wf: &Arc<Workflow>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            password_gate(c, parts)?;
            return Ok(c.clone());
        }
        let Some(token) = bearer(parts) else {
            return Err(ApiError::unauthenticated(
                "send `Authorization: Bearer <token>` (POST /v1/auth/login)",
            ));
        };
        let caller = resolve(wf, token).await?;
        parts.extensions.insert(caller.clone());
        password_gate(&caller, parts)?;
        Ok(caller)
    }
}
