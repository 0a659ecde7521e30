//! Users, roles, passwords (argon2id), sessions and lockout.
//!
//! A session token is 32 random bytes, base64url, handed to the client once;
//! the database keeps only its SHA-256, so a leaked table grants nothing.
//! Every request is authorised here — its session ([`Caller`]) and, before
//! its body is read, the roles its route allows ([`Require`]) — and in each
//! handler against the record it touches (tenant, institution, creator).

use std::marker::PhantomData;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Json};
use crate::{Workflow, WorkflowError, audit, ts};

/// The four roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Platform administrator: products, contract types, users,
    /// institutions, audit, monitoring.
    Admin,
    /// A bank's (enterprise's) reviewer: approves its own bank's records.
    Reviewer,
    /// A preservation user (a customer or business department of a bank).
    User,
    /// A judicial institution (notary office or court).
    Institution,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::User => "user",
            Role::Institution => "institution",
        }
    }
    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "reviewer" => Some(Role::Reviewer),
            "user" => Some(Role::User),
            "institution" => Some(Role::Institution),
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
            Role::Institution => false,
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
    let row = c
        .query_opt(
            "SELECT u.id, u.username, u.role, u.tenant, u.institution_id,
                    s.expires_at <= now(), s.revoked_at IS NOT NULL
               FROM workflow.sessions s JOIN workflow.users u ON u.id = s.user_id
              WHERE s.token_hash = $1",
            &[&token_hash(token)],
        )
        .await?;
    let Some(r) = row else {
        return Err(ApiError::unauthenticated("unknown session token"));
    };
    if r.get::<_, bool>(6) {
        return Err(ApiError::unauthenticated("the session was logged out"));
    }
    if r.get::<_, bool>(5) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session has expired; log in again",
        ));
    }
    Ok(Caller {
        id: r.get(0),
        username: r.get(1),
        role: Role::parse(r.get::<_, &str>(2)).ok_or_else(ApiError::internal)?,
        tenant: r.get(3),
        institution_id: r.get(4),
    })
}

impl FromRequestParts<Arc<Workflow>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        wf: &Arc<Workflow>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let Some(token) = bearer(parts) else {
            return Err(ApiError::unauthenticated(
                "send `Authorization: Bearer <token>` (POST /v1/auth/login)",
            ));
        };
        let caller = resolve(wf, token).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// argon2id (default parameters: 19 MiB, 2 passes) PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt =
        SaltString::encode_b64(&crate::random32()[..16]).map_err(|_| ApiError::internal())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ApiError::internal())
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

// ---------------------------------------------------------------------------
// Login, logout, me
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Opaque bearer token (`Authorization: Bearer <token>`).
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: Caller,
}

/// Log in with username and password.
#[utoipa::path(post, path = "/v1/auth/login", request_body = LoginRequest, security(()), responses(
    (status = 200, body = LoginResponse),
    (status = 401, description = "wrong username or password", body = crate::error::ErrorBody),
    (status = 423, description = "account locked after repeated failures", body = crate::error::ErrorBody),
))]
pub async fn login(
    State(wf): State<Arc<Workflow>>,
    Json(req): Json<LoginRequest>,
) -> Result<axum::Json<LoginResponse>, ApiError> {
    let c = wf.db().await?;
    let row = c
        .query_opt(
            "SELECT id, username, role, tenant, institution_id, password_hash,
                    locked_until IS NOT NULL AND locked_until > now(), locked_until
               FROM workflow.users WHERE username = $1",
            &[&req.username],
        )
        .await?;
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        )
    };
    let Some(r) = row else {
        audit::record(
            &wf,
            None,
            &req.username,
            "auth.login",
            "user",
            "denied",
            "unknown user",
        )
        .await;
        crate::metrics::LOGINS.with_label_values(&["failed"]).inc();
        return Err(bad());
    };
    let user_id: i64 = r.get(0);
    if r.get::<_, bool>(6) {
        let until: time::OffsetDateTime = r.get(7);
        audit::record(
            &wf,
            Some(user_id),
            &req.username,
            "auth.login",
            &format!("user/{user_id}"),
            "denied",
            "account locked",
        )
        .await;
        crate::metrics::LOGINS.with_label_values(&["locked"]).inc();
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "account_locked",
            format!(
                "too many failed logins; the account is locked until {}",
                ts(until)
            ),
        ));
    }
    let phc: String = r.get(5);
    let password = req.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|_| ApiError::internal())?;
    if !ok {
        let locked = c
            .query_one(
                "UPDATE workflow.users
                    SET failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
                        locked_until = CASE WHEN failed_logins + 1 >= $2
                                            THEN now() + make_interval(secs => $3) ELSE locked_until END
                  WHERE id = $1
              RETURNING locked_until IS NOT NULL AND locked_until > now()",
                &[
                    &user_id,
                    &(wf.config.lockout_threshold as i32),
                    &(wf.config.lockout_s as f64),
                ],
            )
            .await?
            .get::<_, bool>(0);
        let detail = if locked {
            "wrong password; account locked"
        } else {
            "wrong password"
        };
        audit::record(
            &wf,
            Some(user_id),
            &req.username,
            "auth.login",
            &format!("user/{user_id}"),
            "denied",
            detail,
        )
        .await;
        crate::metrics::LOGINS.with_label_values(&["failed"]).inc();
        if locked {
            return Err(ApiError::new(
                StatusCode::LOCKED,
                "account_locked",
                format!(
                    "too many failed logins; the account is locked for {} s",
                    wf.config.lockout_s
                ),
            ));
        }
        return Err(bad());
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random32());
    let expires: time::OffsetDateTime = c
        .query_one(
            "WITH s AS (INSERT INTO workflow.sessions (token_hash, user_id, expires_at)
                        VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at)
             UPDATE workflow.users SET failed_logins = 0, locked_until = NULL
              WHERE id = $2 RETURNING (SELECT expires_at FROM s)",
            &[
                &token_hash(&token),
                &user_id,
                &(wf.config.session_ttl_s as f64),
            ],
        )
        .await?
        .get(0);
    let user = Caller {
        id: user_id,
        username: r.get(1),
        role: Role::parse(r.get::<_, &str>(2)).ok_or_else(ApiError::internal)?,
        tenant: r.get(3),
        institution_id: r.get(4),
    };
    audit::record(
        &wf,
        Some(user_id),
        &user.username,
        "auth.login",
        &format!("user/{user_id}"),
        "ok",
        "",
    )
    .await;
    crate::metrics::LOGINS.with_label_values(&["ok"]).inc();
    Ok(axum::Json(LoginResponse {
        token,
        expires_at: ts(expires),
        user,
    }))
}

/// Revoke the session of this request's token.
#[utoipa::path(post, path = "/v1/auth/logout", responses(
    (status = 204, description = "logged out"),
    (status = 401, body = crate::error::ErrorBody),
))]
pub async fn logout(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
        .to_owned();
    let c = wf.db().await?;
    c.execute(
        "UPDATE workflow.sessions SET revoked_at = now() WHERE token_hash = $1 AND user_id = $2",
        &[&token_hash(&token), &caller.id],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who am I.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = Caller)))]
pub async fn me(caller: Caller) -> axum::Json<Caller> {
    axum::Json(caller)
}

// ---------------------------------------------------------------------------
// Users and institutions (administrators)
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// Required for `reviewer` and `user`: the bank (ledger tenant).
    pub tenant: Option<String>,
    /// Required for `institution`.
    pub institution_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserJson {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub institution_id: Option<String>,
    pub locked_until: Option<String>,
    pub created_at: String,
}

fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.as_bytes()[0].is_ascii_alphanumeric()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Create a user (also used by `anchord workflow create-admin`).
pub async fn create_user(wf: &Workflow, u: &NewUser) -> Result<i64, ApiError> {
    let mut errs = std::collections::BTreeMap::new();
    if u.password.chars().count() < 8 {
        errs.insert("password".into(), "at least 8 characters".into());
    }
    let valid_name = !u.username.is_empty()
        && u.username.len() <= 64
        && u.username.as_bytes()[0].is_ascii_alphanumeric()
        && u.username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !valid_name {
        errs.insert(
            "username".into(),
            "1-64 characters of letters, digits, . _ @ -".into(),
        );
    }
    match (u.role, &u.tenant, &u.institution_id) {
        (Role::Reviewer | Role::User, Some(t), None) if valid_tenant(t) => {}
        (Role::Reviewer | Role::User, _, _) => {
            errs.insert(
                "tenant".into(),
                "reviewers and users need a bank tenant ([A-Za-z0-9._-], 1-64) and no institution"
                    .into(),
            );
        }
        (Role::Institution, None, Some(_)) => {}
        (Role::Institution, _, _) => {
            errs.insert(
                "institution_id".into(),
                "institution users need an institution_id and no tenant".into(),
            );
        }
        (Role::Admin, None, None) => {}
        (Role::Admin, _, _) => {
            errs.insert(
                "role".into(),
                "administrators have no tenant or institution".into(),
            );
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let password = u.password.clone();
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::internal())??;
    let c = wf.db().await?;
    if let Some(inst) = &u.institution_id {
        let n = c
            .query_opt("SELECT 1 FROM workflow.institutions WHERE id = $1", &[inst])
            .await?;
        if n.is_none() {
            return Err(ApiError::field("institution_id", "no such institution"));
        }
    }
    let row = c
        .query_opt(
            "INSERT INTO workflow.users (username, password_hash, role, tenant, institution_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING RETURNING id",
            &[
                &u.username,
                &phc,
                &u.role.as_str(),
                &u.tenant,
                &u.institution_id,
            ],
        )
        .await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| ApiError::conflict("a user with this username exists"))
}

/// Create a user (administrators).
#[utoipa::path(post, path = "/v1/users", request_body = NewUser, responses(
    (status = 201, body = UserJson),
    (status = 403, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn post_user(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(u): Json<NewUser>,
) -> Result<(StatusCode, axum::Json<UserJson>), ApiError> {
    let id = create_user(&wf, &u).await?;
    Ok((StatusCode::CREATED, axum::Json(get_user(&wf, id).await?)))
}

async fn get_user(wf: &Workflow, id: i64) -> Result<UserJson, ApiError> {
    let c = wf.db().await?;
    let r = c
        .query_opt(
            "SELECT id, username, role, tenant, institution_id, locked_until, created_at
               FROM workflow.users WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(user_json(&r))
}

fn user_json(r: &tokio_postgres::Row) -> UserJson {
    UserJson {
        id: r.get(0),
        username: r.get(1),
        role: Role::parse(r.get::<_, &str>(2)).unwrap_or(Role::User),
        tenant: r.get(3),
        institution_id: r.get(4),
        locked_until: crate::ts_opt(r.get(5)),
        created_at: ts(r.get(6)),
    }
}

/// List users (administrators: all; reviewers: their bank's).
#[utoipa::path(get, path = "/v1/users", responses((status = 200, body = [UserJson])))]
pub async fn list_users(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
) -> Result<axum::Json<Vec<UserJson>>, ApiError> {
    let tenant = if caller.role == Role::Admin {
        None
    } else {
        caller.tenant.clone()
    };
    let c = wf.db().await?;
    let rows = c
        .query(
            "SELECT id, username, role, tenant, institution_id, locked_until, created_at
               FROM workflow.users WHERE $1::text IS NULL OR tenant = $1 ORDER BY id",
            &[&tenant],
        )
        .await?;
    Ok(axum::Json(rows.iter().map(user_json).collect()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub id: String,
    pub name: String,
    /// `notary` or `court`.
    pub kind: String,
    /// Notarization fee, fen (CNY cents).
    #[serde(default)]
    pub fee_cents: i64,
}

/// Register a notary office or court (administrators).
#[utoipa::path(post, path = "/v1/institutions", request_body = Institution, responses(
    (status = 201, body = Institution),
    (status = 409, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn post_institution(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(i): Json<Institution>,
) -> Result<(StatusCode, axum::Json<Institution>), ApiError> {
    let mut errs = std::collections::BTreeMap::new();
    if !valid_tenant(&i.id) || i.id.bytes().any(|b| b.is_ascii_uppercase()) {
        errs.insert("id".into(), "1-64 of [a-z0-9._-]".into());
    }
    if i.name.is_empty() || i.name.chars().count() > 200 {
        errs.insert("name".into(), "1-200 characters".into());
    }
    if i.kind != "notary" && i.kind != "court" {
        errs.insert("kind".into(), "notary or court".into());
    }
    if i.fee_cents < 0 {
        errs.insert("fee_cents".into(), "must not be negative".into());
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let c = wf.db().await?;
    let n = c
        .execute(
            "INSERT INTO workflow.institutions (id, name, kind, fee_cents) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            &[&i.id, &i.name, &i.kind, &i.fee_cents],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::conflict("an institution with this id exists"));
    }
    Ok((StatusCode::CREATED, axum::Json(i)))
}

/// Notary offices and courts (with their fees), for any signed-in user.
#[utoipa::path(get, path = "/v1/institutions", responses((status = 200, body = [Institution])))]
pub async fn list_institutions(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
) -> Result<axum::Json<Vec<Institution>>, ApiError> {
    let c = wf.db().await?;
    let rows = c
        .query(
            "SELECT id, name, kind, fee_cents FROM workflow.institutions ORDER BY id",
            &[],
        )
        .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| Institution {
                id: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                fee_cents: r.get(3),
            })
            .collect(),
    ))
}

/// Create the configured bootstrap administrator if it does not exist.
pub(crate) async fn bootstrap_admin(wf: &Workflow) -> Result<(), WorkflowError> {
    let name = &wf.config.bootstrap_admin;
    if name.is_empty() {
        return Ok(());
    }
    let password = match &wf.config.bootstrap_admin_password_file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| {
                WorkflowError::Config(format!(
                    "workflow.bootstrap_admin_password_file {}: {e}",
                    p.display()
                ))
            })?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        None => std::env::var(&wf.config.bootstrap_admin_password_env).map_err(|_| {
            WorkflowError::Config(format!(
                "workflow.bootstrap_admin is set but {} is not",
                wf.config.bootstrap_admin_password_env
            ))
        })?,
    };
    let u = NewUser {
        username: name.clone(),
        password,
        role: Role::Admin,
        tenant: None,
        institution_id: None,
    };
    match create_user(wf, &u).await {
        Ok(id) => {
            tracing::info!(username = %name, id, "created the bootstrap administrator");
            audit::record(
                wf,
                Some(id),
                name,
                "user.bootstrap_admin",
                &format!("user/{id}"),
                "ok",
                "",
            )
            .await;
            Ok(())
        }
        Err(e) if e.code == "conflict" => Ok(()),
        Err(e) => Err(WorkflowError::Config(format!(
            "workflow.bootstrap_admin: {} {:?}",
            e.message, e.fields
        ))),
    }
}

/// Create an administrator from the command line (`anchord workflow
/// create-admin`): applies the workflow migrations first.
pub async fn create_admin(
    ledger: &anchord_ledger::Ledger,
    username: &str,
    password: &str,
) -> Result<i64, WorkflowError> {
    let pool = ledger.workflow_pool();
    let mut c = pool.get().await?;
    crate::migrate::run(&mut c).await?;
    let password = password.to_owned();
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| WorkflowError::Config(e.to_string()))?
        .map_err(|e| WorkflowError::Config(e.message))?;
    if phc.is_empty() {
        return Err(WorkflowError::Config("empty password hash".into()));
    }
    let row = c
        .query_opt(
            "INSERT INTO workflow.users (username, password_hash, role) VALUES ($1, $2, 'admin')
             ON CONFLICT (username) DO NOTHING RETURNING id",
            &[&username, &phc],
        )
        .await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| WorkflowError::Config(format!("a user named {username} exists")))
}
