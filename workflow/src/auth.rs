//! Login, users, passwords (argon2id), sessions and lockout. Who a request's
//! caller is and what their role allows (the `Caller` and `Require`
//! extractors) is `authz.rs`.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authz::{Caller, Require, Role, roles, token_hash};
use crate::error::{ApiError, Json, Path};
use crate::{Workflow, WorkflowError, audit, ts};

/// Password hashing and verification (argon2id, about 19 MiB and one CPU
/// each): never with a pool connection held, never on the async threads
/// (`spawn_blocking`), at most `password_hash_concurrency` at once; a
/// caller that waits longer than `password_hash_wait_ms` for a slot gets
/// 503. Unknown users are verified against a dummy hash so that every
/// failed login costs the same.
pub struct Passwords {
    slots: Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
    dummy: Arc<str>,
    blocklist: std::collections::HashSet<String>,
    min_score: u8,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

/// Longest password accepted, characters (longer ones never verify).
pub const MAX_PASSWORD_CHARS: usize = 256;

impl Passwords {
    pub(crate) async fn new(config: &crate::WorkflowConfig) -> Result<Passwords, WorkflowError> {
        let slots = match config.password_hash_concurrency {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        };
        let blocklist = match &config.password_blocklist_file {
            None => Default::default(),
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| {
                    WorkflowError::Config(format!(
                        "workflow.password_blocklist_file {}: {e}",
                        p.display()
                    ))
                })?
                .lines()
                .map(|l| l.trim().to_lowercase())
                .filter(|l| !l.is_empty())
                .collect(),
        };
        let random = hex::encode(crate::random32());
        let dummy = tokio::task::spawn_blocking(move || hash_password(&random))
            .await
            .map_err(|e| WorkflowError::Config(format!("hashing: {e}")))?
            .map_err(|e| WorkflowError::Config(format!("hashing: {}", e.message)))?;
        Ok(Passwords {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            wait: std::time::Duration::from_millis(config.password_hash_wait_ms),
            dummy: dummy.into(),
            blocklist,
            min_score: config.password_min_score,
        })
    }

    #[track_caller]
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + '_ {
        crate::conn::none_held("hashing a password");
        async move {
            let permit =
                match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        return Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "the server is busy checking passwords; retry later",
                        ));
                    }
                };
            tokio::task::spawn_blocking(move || {
                let _slot = permit;
                f()
            })
            .await
            .map_err(|_| ApiError::internal())
        }
    }

    /// Does `password` match `phc`? With no `phc` (an unknown, locked or
    /// disabled account) the dummy hash is verified instead, and the answer
    /// is false: the same work either way.
    #[track_caller]
    pub(crate) fn verify(
        &self,
        password: &str,
        phc: Option<&str>,
    ) -> impl std::future::Future<Output = Result<bool, ApiError>> + Send + '_ {
        let known = phc.is_some();
        let phc: Arc<str> = phc.map(Arc::from).unwrap_or_else(|| self.dummy.clone());
        // Over-long passwords never match; the work stays the same.
        let too_long = password.chars().count() > MAX_PASSWORD_CHARS;
        let password: String = password.chars().take(MAX_PASSWORD_CHARS).collect();
        let run = self.run(move || verify_password(&password, &phc));
        async move { Ok(run.await? && known && !too_long) }
    }

    /// Hash a new password (after [`Passwords::check`]).
    #[track_caller]
    pub(crate) fn hash(
        &self,
        password: &str,
    ) -> impl std::future::Future<Output = Result<String, ApiError>> + Send + '_ {
        let password = password.to_owned();
        let run = self.run(move || hash_password(&password));
        async move { run.await? }
    }

    /// Is `password` acceptable for `username`? `Err` says why not.
    pub(crate) fn check(&self, password: &str, username: &str) -> Result<(), String> {
        password_problem(password, username, self.min_score, &self.blocklist)
    }
}

/// Why a new password is refused, if it is: fewer than 8 or more than
/// [`MAX_PASSWORD_CHARS`] characters; a commonly used password (the
/// 30,000 most common passwords of the breach corpus built into `zxcvbn`,
/// with l33t and reversed variants, and the operator's
/// `password_blocklist_file`); or a `zxcvbn` strength score below
/// `min_score` (counting the username and common words as known to the
/// attacker).
pub fn password_problem(
    password: &str,
    username: &str,
    min_score: u8,
    blocklist: &std::collections::HashSet<String>,
) -> Result<(), String> {
    let n = password.chars().count();
    if n < 8 {
        return Err("at least 8 characters".into());
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("at most {MAX_PASSWORD_CHARS} characters"));
    }
    if blocklist.contains(&password.to_lowercase()) {
        return Err("a commonly used or breached password; choose another".into());
    }
    let lower = username.to_lowercase();
    // The estimate's cost grows with the length: its first 100 characters
    // decide (a longer password is at least as strong as its prefix).
    let head: String = password.chars().take(100).collect();
    let e = zxcvbn::zxcvbn(&head, &[username, lower.as_str(), "anchord"]);
    // One match spanning the whole password, from the passwords list (the
    // crate does not export the dictionary enum's name: compare its Debug).
    let common = matches!(e.sequence(), [m] if matches!(
        &m.pattern,
        zxcvbn::matching::patterns::MatchPattern::Dictionary(d)
            if format!("{:?}", d.dictionary_name) == "Passwords"
    ));
    if common {
        return Err("a commonly used or breached password; choose another".into());
    }
    let score = e.score() as u8;
    if score < min_score {
        let mut why =
            format!("too easy to guess (strength {score} of 4; at least {min_score} needed)");
        if let Some(f) = e.feedback() {
            if let Some(w) = f.warning() {
                why.push_str(&format!(": {w}"));
            }
            for s in f.suggestions() {
                why.push_str(&format!("; {s}"));
            }
        }
        return Err(why);
    }
    Ok(())
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

/// The one answer to every failed login: unknown user, wrong password,
/// locked or disabled account alike (status and body), so that an outside
/// caller learns nothing about which accounts exist or are locked.
fn login_failed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "wrong username or password, or the account cannot log in now",
    )
}

/// A login attempt, counted before the password is checked.
struct Attempt {
    user: Caller,
    phc: String,
    /// `failed_logins` after counting this attempt.
    count: i32,
    /// Not locked or disabled when counted: the password is checked.
    admitted: bool,
    locked: bool,
    disabled: bool,
}

/// Count the attempt atomically (one statement under the row's lock) before
/// any password is checked: a lock reached by concurrent attempts holds for
/// every attempt counted after it, and at most `lockout_threshold`
/// passwords are checked per lock period however many arrive at once.
async fn count_attempt(
    c: &tokio_postgres::Client,
    wf: &Workflow,
    username: &str,
) -> Result<Option<Attempt>, ApiError> {
    let r = c
        .query_opt(
            "WITH old AS (
                 SELECT id, locked_until IS NOT NULL AND locked_until > now() AS locked,
                        disabled_at IS NOT NULL AS disabled
                   FROM workflow.users WHERE username = $1 FOR UPDATE)
             UPDATE workflow.users u
                SET failed_logins = CASE
                        WHEN old.locked THEN LEAST(u.failed_logins + 1, 1000000)
                        WHEN u.locked_until IS NOT NULL THEN 1
                        ELSE u.failed_logins + 1 END,
                    locked_until = CASE
                        WHEN old.locked THEN u.locked_until
                        WHEN (CASE WHEN u.locked_until IS NOT NULL THEN 1 ELSE u.failed_logins + 1 END) >= $2
                            THEN now() + make_interval(secs => $3)
                        ELSE NULL END
               FROM old
              WHERE u.id = old.id
          RETURNING u.id, u.username, u.role, u.tenant, u.institution_id, u.password_hash,
                    u.failed_logins, old.locked, old.disabled",
            &[
                &username,
                &(wf.config.lockout_threshold.min(i32::MAX as u32) as i32),
                &(wf.config.lockout_s as f64),
            ],
        )
        .await?;
    let Some(r) = r else { return Ok(None) };
    let (locked, disabled): (bool, bool) = (r.get(7), r.get(8));
    Ok(Some(Attempt {
        user: Caller {
            id: r.get(0),
            username: r.get(1),
            role: Role::parse(r.get::<_, &str>(2)).ok_or_else(ApiError::internal)?,
            tenant: r.get(3),
            institution_id: r.get(4),
        },
        phc: r.get(5),
        count: r.get(6),
        admitted: !locked && !disabled,
        locked,
        disabled,
    }))
}

/// Log in with username and password.
///
/// Every failure (unknown user, wrong password, locked or disabled
/// account) answers the same 401 `invalid_credentials`, after the same
/// work. Attempts are counted before the password is checked; the
/// `lockout_threshold`-th attempt in a row locks the account for
/// `lockout_s` (a right password clears the count only when no other
/// attempt was counted after it). Limits: `login_per_ip_per_min` and
/// `login_per_account_per_min` (429 with `Retry-After`).
#[utoipa::path(post, path = "/v1/auth/login", request_body = LoginRequest, security(()), responses(
    (status = 200, body = LoginResponse),
    (status = 401, description = "`invalid_credentials`: wrong username or password, or the account is locked or disabled (one answer for all)", body = crate::error::ErrorBody),
    (status = 429, description = "`rate_limited`: too many attempts from this address or for this username; see `Retry-After`", body = crate::error::ErrorBody),
))]
pub async fn login(
    State(wf): State<Arc<Workflow>>,
    Json(req): Json<LoginRequest>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    if let Err(over) = wf.limits.login_account(&req.username) {
        return Ok(crate::limits::too_many(over));
    }
    // 1. Count the attempt (one connection, released before hashing).
    let attempt = if valid_username(&req.username) {
        let c = wf.db().await?;
        count_attempt(&c, &wf, &req.username).await?
    } else {
        None
    };
    // 2. Check the password with no connection held (the dummy hash when
    //    there is nothing to check: the same cost).
    let phc = attempt
        .as_ref()
        .filter(|a| a.admitted)
        .map(|a| a.phc.as_str());
    let ok = wf.passwords.verify(&req.password, phc).await?;
    // 3. Record the outcome, with its audit row, in one transaction.
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let Some(a) = attempt else {
        audit::append_in(
            &tx,
            None,
            &req.username,
            "auth.login",
            "user",
            "denied",
            "unknown user",
        )
        .await?;
        tx.commit().await?;
        crate::metrics::LOGINS.with_label_values(&["failed"]).inc();
        return Err(login_failed());
    };
    let object = format!("user/{}", a.user.id);
    if !ok {
        let now_locked = a.admitted && a.count >= wf.config.lockout_threshold as i32;
        let (detail, outcome) = if a.disabled {
            ("account disabled", "failed")
        } else if a.locked {
            ("account locked", "locked")
        } else if now_locked {
            ("wrong password; account now locked", "failed")
        } else {
            ("wrong password", "failed")
        };
        audit::append_in(
            &tx,
            Some(a.user.id),
            &a.user.username,
            "auth.login",
            &object,
            "denied",
            detail,
        )
        .await?;
        tx.commit().await?;
        crate::metrics::LOGINS.with_label_values(&[outcome]).inc();
        return Err(login_failed());
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random32());
    let expires: time::OffsetDateTime = tx
        .query_one(
            "INSERT INTO workflow.sessions (token_hash, user_id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at",
            &[
                &token_hash(&token),
                &a.user.id,
                &(wf.config.session_ttl_s as f64),
            ],
        )
        .await?
        .get(0);
    // The count (and a lock this attempt engaged) is cleared only when no
    // other attempt was counted after this one: a concurrent right password
    // never clears a lock that concurrent wrong ones reached.
    tx.execute(
        "UPDATE workflow.users SET failed_logins = 0, locked_until = NULL
          WHERE id = $1 AND failed_logins = $2",
        &[&a.user.id, &a.count],
    )
    .await?;
    audit::append_in(
        &tx,
        Some(a.user.id),
        &a.user.username,
        "auth.login",
        &object,
        "ok",
        "",
    )
    .await?;
    tx.commit().await?;
    crate::metrics::LOGINS.with_label_values(&["ok"]).inc();
    Ok(axum::Json(LoginResponse {
        token,
        expires_at: ts(expires),
        user: a.user,
    })
    .into_response())
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
    /// Set when an administrator disabled the account.
    pub disabled_at: Option<String>,
    /// The last password change or reset.
    pub password_changed_at: Option<String>,
    pub created_at: String,
}

const USER_COLUMNS: &str = "id, username, role, tenant, institution_id, locked_until, created_at, disabled_at, password_changed_at";

/// A username: 1-64 of letters, digits, `. _ @ -`, starting with a letter
/// or digit.
fn valid_username(name: &str) -> bool {
    // By characters: any input is simply invalid, never a panic.
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

fn valid_tenant(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && t.chars().count() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Create a user (also used by `anchord workflow create-admin`).
pub async fn create_user(wf: &Workflow, u: &NewUser) -> Result<i64, ApiError> {
    let mut errs = std::collections::BTreeMap::new();
    if let Err(why) = wf.passwords.check(&u.password, &u.username) {
        errs.insert("password".into(), why);
    }
    if !valid_username(&u.username) {
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
    let phc = wf.passwords.hash(&u.password).await?;
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
    let c = wf.db().await?;
    Ok((StatusCode::CREATED, axum::Json(get_user(&c, id).await?)))
}

async fn get_user(c: &tokio_postgres::Client, id: i64) -> Result<UserJson, ApiError> {
    let r = c
        .query_opt(
            &format!("SELECT {USER_COLUMNS} FROM workflow.users WHERE id = $1"),
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
        disabled_at: crate::ts_opt(r.get(7)),
        password_changed_at: crate::ts_opt(r.get(8)),
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
            &format!(
                "SELECT {USER_COLUMNS} FROM workflow.users
                  WHERE $1::text IS NULL OR tenant = $1 ORDER BY id"
            ),
            &[&tenant],
        )
        .await?;
    Ok(axum::Json(rows.iter().map(user_json).collect()))
}

// ---------------------------------------------------------------------------
// Accounts: disable, enable, passwords, sessions
// ---------------------------------------------------------------------------

/// Revoke every live session of `user` (but `keep`, the caller's own).
async fn revoke_sessions(
    c: &tokio_postgres::Transaction<'_>,
    user: i64,
    keep: Option<&[u8]>,
) -> Result<u64, ApiError> {
    Ok(c.execute(
        "UPDATE workflow.sessions SET revoked_at = now()
          WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
            AND ($2::bytea IS NULL OR token_hash <> $2)",
        &[&user, &keep],
    )
    .await?)
}

/// Disable an account (administrators): it cannot log in and every one of
/// its sessions is revoked. Administrators do not disable themselves.
#[utoipa::path(post, path = "/v1/users/{id}/disable", params(("id" = i64, Path)), responses(
    (status = 200, body = UserJson),
    (status = 409, description = "`conflict`: your own account", body = crate::error::ErrorBody),
))]
pub async fn disable_user(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Admin>,
    Path(id): Path<i64>,
) -> Result<axum::Json<UserJson>, ApiError> {
    if id == caller.id {
        return Err(ApiError::conflict("you cannot disable your own account"));
    }
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let n = tx
        .execute(
            "UPDATE workflow.users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1",
            &[&id],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("user"));
    }
    revoke_sessions(&tx, id, None).await?;
    tx.commit().await?;
    Ok(axum::Json(get_user(&c, id).await?))
}

/// Enable a disabled account again (administrators); clears a lockout.
#[utoipa::path(post, path = "/v1/users/{id}/enable", params(("id" = i64, Path)), responses(
    (status = 200, body = UserJson),
))]
pub async fn enable_user(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
) -> Result<axum::Json<UserJson>, ApiError> {
    let c = wf.db().await?;
    let n = c
        .execute(
            "UPDATE workflow.users SET disabled_at = NULL, failed_logins = 0, locked_until = NULL
              WHERE id = $1",
            &[&id],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("user"));
    }
    Ok(axum::Json(get_user(&c, id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// Sessions revoked.
    pub revoked: u64,
}

/// Revoke every session of a user (administrators).
#[utoipa::path(delete, path = "/v1/users/{id}/sessions", params(("id" = i64, Path)), responses(
    (status = 200, body = Revoked),
))]
pub async fn revoke_user_sessions(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Revoked>, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    if tx
        .query_opt("SELECT 1 FROM workflow.users WHERE id = $1", &[&id])
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("user"));
    }
    let revoked = revoke_sessions(&tx, id, None).await?;
    tx.commit().await?;
    Ok(axum::Json(Revoked { revoked }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 8 characters, not a common or breached password, zxcvbn
    /// strength at least `password_min_score` (default 3 of 4).
    pub new_password: String,
}

/// Change your own password: your other sessions are revoked (this one
/// stays). Attempts count against the per-username login limit
/// (`login_per_account_per_min`).
#[utoipa::path(put, path = "/v1/me/password", request_body = PasswordChange, responses(
    (status = 204, description = "changed"),
    (status = 422, description = "`validation_failed`: the current password is wrong, or the new one is too weak (`fields`)", body = crate::error::ErrorBody),
))]
pub async fn change_password(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Json(p): Json<PasswordChange>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    // Guessing the current password with a stolen session is limited like
    // guessing it at login (the per-username login limit).
    if let Err(over) = wf.limits.login_account(&caller.username) {
        return Ok(crate::limits::too_many(over));
    }
    if let Err(why) = wf.passwords.check(&p.new_password, &caller.username) {
        return Err(ApiError::field("new_password", why));
    }
    let phc: String = {
        let c = wf.db().await?;
        c.query_one(
            "SELECT password_hash FROM workflow.users WHERE id = $1",
            &[&caller.id],
        )
        .await?
        .get(0)
    };
    if !wf.passwords.verify(&p.current_password, Some(&phc)).await? {
        return Err(ApiError::field("current_password", "wrong password"));
    }
    let new = wf.passwords.hash(&p.new_password).await?;
    let keep = current_token(&headers).map(|t| token_hash(&t));
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    tx.execute(
        "UPDATE workflow.users SET password_hash = $2, password_changed_at = now() WHERE id = $1",
        &[&caller.id, &new],
    )
    .await?;
    revoke_sessions(&tx, caller.id, keep.as_deref()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The same rules as a new user's password.
    pub new_password: String,
}

/// Reset a user's password (administrators): every session of the user is
/// revoked and a lockout cleared.
#[utoipa::path(put, path = "/v1/users/{id}/password", params(("id" = i64, Path)), request_body = PasswordReset, responses(
    (status = 200, body = UserJson),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn reset_password(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
    body: Result<Json<PasswordReset>, ApiError>,
) -> Result<axum::Json<UserJson>, ApiError> {
    let username: String = {
        let c = wf.db().await?;
        c.query_opt("SELECT username FROM workflow.users WHERE id = $1", &[&id])
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?
            .get(0)
    };
    let Json(p) = body?;
    if let Err(why) = wf.passwords.check(&p.new_password, &username) {
        return Err(ApiError::field("new_password", why));
    }
    let new = wf.passwords.hash(&p.new_password).await?;
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    tx.execute(
        "UPDATE workflow.users SET password_hash = $2, password_changed_at = now(),
                failed_logins = 0, locked_until = NULL
          WHERE id = $1",
        &[&id, &new],
    )
    .await?;
    revoke_sessions(&tx, id, None).await?;
    tx.commit().await?;
    Ok(axum::Json(get_user(&c, id).await?))
}

fn current_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
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
/// create-admin`): applies the workflow migrations first, checks the
/// username and the password as the API does (`password_min_score`,
/// `password_blocklist_file` of `config`), and writes the audit row
/// `user.create_admin` (by `command-line`) in the same transaction.
pub async fn create_admin(
    ledger: &anchord_ledger::Ledger,
    config: &crate::WorkflowConfig,
    username: &str,
    password: &str,
) -> Result<i64, WorkflowError> {
    if !valid_username(username) {
        return Err(WorkflowError::Config(
            "the username must be 1-64 characters of letters, digits, . _ @ -".into(),
        ));
    }
    let passwords = Passwords::new(config).await?;
    passwords
        .check(password, username)
        .map_err(|why| WorkflowError::Config(format!("the password is refused: {why}")))?;
    let phc = passwords
        .hash(password)
        .await
        .map_err(|e| WorkflowError::Config(e.message))?;
    let pool = ledger.workflow_pool();
    let mut c = crate::conn::get(&pool).await?;
    crate::migrate::run(&mut c).await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "INSERT INTO workflow.users (username, password_hash, role) VALUES ($1, $2, 'admin')
             ON CONFLICT (username) DO NOTHING RETURNING id",
            &[&username, &phc],
        )
        .await?;
    let Some(id) = row.map(|r| r.get::<_, i64>(0)) else {
        return Err(WorkflowError::Config(format!(
            "a user named {username} exists"
        )));
    };
    audit::append_in(
        &tx,
        None,
        "command-line",
        "user.create_admin",
        &format!("user/{id}"),
        "ok",
        &format!("anchord workflow create-admin --username {username}"),
    )
    .await
    .map_err(|e| WorkflowError::Db(e.message))?;
    tx.commit().await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(p: &str, user: &str) -> Result<(), String> {
        password_problem(p, user, 3, &Default::default())
    }

    #[test]
    fn common_breached_and_weak_passwords_are_refused() {
        for weak in [
            "password",
            "Password",
            "P@ssw0rd",
            "drowssap",
            "qwerty123456",
            "letmein123",
            "Password1!",
            "12345678",
            "short",
        ] {
            assert!(problem(weak, "alice").is_err(), "{weak}");
        }
        assert!(problem("alice-alice-alice", "alice").is_err());
        assert!(problem("violet-Kettle-orbit-42", "alice").is_ok());
        assert!(problem(&"x".repeat(MAX_PASSWORD_CHARS + 1), "alice").is_err());
        let list = std::collections::HashSet::from(["bank-of-anchord-2026!".to_owned()]);
        assert!(password_problem("Bank-of-Anchord-2026!", "alice", 3, &list).is_err());
    }

    #[test]
    fn usernames_are_checked_by_bytes_without_panics() {
        assert!(valid_username("alice.b@bank-a_1"));
        for bad in ["", "-a", "a b", "é", "张三", &"a".repeat(65)] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn the_password_and_username_checks_are_total(p in "\\PC{0,300}", u in "\\PC{0,80}") {
            let _ = problem(&p, &u);
            let _ = valid_username(&u);
        }
    }
}
