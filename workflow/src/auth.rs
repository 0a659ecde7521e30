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
use crate::store::{orgs, users};
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
/// any password is checked (`store::users::count_attempt`).
async fn count_attempt(
    c: &tokio_postgres::Client,
    wf: &Workflow,
    username: &str,
) -> Result<Option<Attempt>, ApiError> {
    let a = users::count_attempt(
        c,
        username,
        wf.config.lockout_threshold.min(i32::MAX as u32) as i32,
        wf.config.lockout_s as f64,
    )
    .await?;
    let Some(a) = a else { return Ok(None) };
    Ok(Some(Attempt {
        user: Caller {
            id: a.id,
            username: a.username,
            role: Role::parse(&a.role).ok_or_else(ApiError::internal)?,
            tenant: a.tenant,
            institution_id: a.institution_id,
            organisation_id: a.organisation_id,
            must_change_password: a.must_change_password,
        },
        phc: a.password_hash,
        count: a.count,
        admitted: !a.locked && !a.disabled,
        locked: a.locked,
        disabled: a.disabled,
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
        count_attempt(c.client(), &wf, &req.username).await?
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
    let expires = users::create_session(
        &tx,
        &token_hash(&token),
        a.user.id,
        wf.config.session_ttl_s as f64,
    )
    .await?;
    // The count (and a lock this attempt engaged) is cleared only when no
    // other attempt was counted after this one: a concurrent right password
    // never clears a lock that concurrent wrong ones reached.
    users::clear_failures(&tx, a.user.id, a.count).await?;
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
    users::revoke_session(c.client(), &token_hash(&token), caller.id).await?;
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
    /// The user's organisation (`GET /v1/organisations`): a bank or
    /// enterprise for `reviewer` and `user`, a notary office or court for
    /// `institution`. Instead of it (API v1), `tenant` or `institution_id`.
    #[serde(default)]
    pub organisation_id: Option<i64>,
    /// API v1: the bank (ledger tenant) of a `reviewer` or `user`; a bank
    /// organisation named after it is created when the tenant has none.
    pub tenant: Option<String>,
    /// API v1: the institution of an `institution` user.
    pub institution_id: Option<String>,
    /// Where notifications are mailed (at most 254 characters, one
    /// address, no display name).
    #[serde(default)]
    pub email: Option<String>,
    /// The user's name as mails and the console show it (1-100
    /// characters, no control characters).
    #[serde(default)]
    pub display_name: Option<String>,
}

impl NewUser {
    /// An administrator's account (bootstrap).
    pub(crate) fn admin(username: String, password: String) -> NewUser {
        NewUser {
            username,
            password,
            role: Role::Admin,
            organisation_id: None,
            tenant: None,
            institution_id: None,
            email: None,
            display_name: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserJson {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The user's organisation (none for administrators and outside
    /// signers).
    pub organisation_id: Option<i64>,
    pub tenant: Option<String>,
    pub institution_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locked_until: Option<String>,
    /// Set when an administrator disabled the account.
    pub disabled_at: Option<String>,
    /// The last password change or reset.
    pub password_changed_at: Option<String>,
    /// An administrator reset the password; the user must change it.
    pub must_change_password: bool,
    pub created_at: String,
}

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

pub(crate) fn valid_tenant(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && t.chars().count() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Why an e-mail address is refused, if it is: one address as RFC 5321/5322
/// allow it (parsed by `lettre`), at most 254 characters, no white space or
/// control characters (nothing that could end a mail header).
pub(crate) fn email_problem(e: &str) -> Option<String> {
    if e.chars().count() > 254 || e.len() < 3 {
        return Some("3-254 characters".into());
    }
    if e.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some("no white space or control characters (one bare address)".into());
    }
    match e.parse::<lettre::Address>() {
        Ok(_) => None,
        Err(_) => Some("not an e-mail address (local@domain)".into()),
    }
}

/// Why a display name is refused, if it is: 1-100 characters, no control
/// characters (CR, LF, ...).
pub(crate) fn display_name_problem(n: &str) -> Option<String> {
    let len = n.chars().count();
    if len == 0 || len > 100 {
        return Some("1-100 characters".into());
    }
    if n.chars().any(crate::text::unfit_in_name) {
        return Some(
            "no control characters (line breaks, tabs, ...) or bidirectional overrides".into(),
        );
    }
    None
}

/// Does `role` fit an organisation of `kind`?
pub(crate) fn role_fits(role: Role, kind: &str) -> bool {
    match role {
        Role::Reviewer | Role::User => kind == "bank" || kind == "enterprise",
        Role::Institution => kind == "notary" || kind == "court",
        Role::OrgAdmin => orgs::KINDS.contains(&kind),
        Role::Admin | Role::Signer => false,
    }
}

/// Narrow a new user to what `caller` may create: administrators anything
/// [`create_user`] accepts; an organisation administrator only users of
/// their own organisation (implied, or named by `organisation_id` or the v1
/// `tenant` / `institution_id`) and never a platform administrator (403
/// otherwise): at most their own role.
pub(crate) fn scope_new_user(caller: &Caller, u: &mut NewUser) -> Result<(), ApiError> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::OrgAdmin => {
            if u.role == Role::Admin {
                return Err(ApiError::forbidden(
                    "an organisation administrator cannot create platform administrators",
                ));
            }
            let own = caller.organisation_id.ok_or_else(|| {
                ApiError::forbidden("this organisation administrator has no organisation")
            })?;
            if u.organisation_id.is_some_and(|o| o != own) {
                return Err(ApiError::forbidden(
                    "an organisation administrator creates users of their own organisation only",
                ));
            }
            // The v1 forms name an organisation too: their own only.
            if u.tenant
                .as_ref()
                .is_some_and(|t| caller.tenant.as_ref() != Some(t))
                || u.institution_id
                    .as_ref()
                    .is_some_and(|i| caller.institution_id.as_ref() != Some(i))
            {
                return Err(ApiError::forbidden(
                    "an organisation administrator creates users of their own organisation only",
                ));
            }
            u.tenant = None;
            u.institution_id = None;
            u.organisation_id = Some(own);
            Ok(())
        }
        _ => Err(ApiError::forbidden(
            "this action needs the role admin or org_admin",
        )),
    }
}

/// User `id`, if `caller` may manage them (404 for no such user, 403 for
/// another organisation's: [`Caller::may_manage_users_of`]).
async fn managed_user<C: tokio_postgres::GenericClient + Sync>(
    c: &C,
    caller: &Caller,
    id: i64,
) -> Result<users::User, ApiError> {
    let u = users::get(c, id).await?;
    caller.may_manage_users_of(u.organisation_id)?;
    Ok(u)
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
    if let Some(why) = u.email.as_deref().and_then(email_problem) {
        errs.insert("email".into(), why);
    }
    if let Some(why) = u.display_name.as_deref().and_then(display_name_problem) {
        errs.insert("display_name".into(), why);
    }
    let by_org = u.organisation_id.is_some();
    match (u.role, &u.tenant, &u.institution_id) {
        (Role::Reviewer | Role::User | Role::Institution | Role::OrgAdmin, None, None)
            if by_org => {}
        _ if by_org => {
            errs.insert(
                "organisation_id".into(),
                "give organisation_id, or (API v1) tenant or institution_id, not both; administrators have none".into(),
            );
        }
        (Role::Reviewer | Role::User, Some(t), None) if valid_tenant(t) => {}
        (Role::Reviewer | Role::User, _, _) => {
            errs.insert(
                "tenant".into(),
                "reviewers and users need an organisation_id or a bank tenant ([A-Za-z0-9._-], 1-64) and no institution"
                    .into(),
            );
        }
        (Role::Institution, None, Some(_)) => {}
        (Role::Institution, _, _) => {
            errs.insert(
                "institution_id".into(),
                "institution users need an organisation_id or an institution_id, and no tenant"
                    .into(),
            );
        }
        (Role::OrgAdmin, _, _) => {
            errs.insert(
                "organisation_id".into(),
                "an organisation administrator needs an organisation_id (and no tenant or institution_id)".into(),
            );
        }
        (Role::Admin, None, None) => {}
        (Role::Admin, _, _) => {
            errs.insert(
                "role".into(),
                "administrators have no tenant or institution".into(),
            );
        }
        // Outside signers register by redeeming a contract invitation (H8).
        (Role::Signer, _, _) => {
            errs.insert(
                "role".into(),
                "outside signers register themselves with a contract invitation (POST /v1/invitations/register)".into(),
            );
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let phc = wf.passwords.hash(&u.password).await?;
    let c = wf.db().await?;
    let organisation_id = match (u.organisation_id, &u.tenant, &u.institution_id) {
        (Some(id), _, _) => {
            let o = match orgs::get(c.client(), id).await {
                Err(crate::store::StoreError::NotFound(_)) => {
                    return Err(ApiError::field("organisation_id", "no such organisation"));
                }
                r => r?,
            };
            if !role_fits(u.role, &o.kind) {
                return Err(ApiError::field(
                    "role",
                    format!("a {} organisation has no {} users", o.kind, u.role.as_str()),
                ));
            }
            Some(id)
        }
        (None, Some(t), None) => Some(orgs::ensure_tenant_org(c.client(), t).await?),
        (None, None, Some(inst)) => match orgs::of_institution(c.client(), inst).await? {
            Some(id) => Some(id),
            None => return Err(ApiError::field("institution_id", "no such institution")),
        },
        _ => None,
    };
    Ok(users::insert(
        c.client(),
        &users::NewUserRow {
            username: &u.username,
            password_hash: &phc,
            role: u.role.as_str(),
            organisation_id,
            email: u.email.as_deref(),
            display_name: u.display_name.as_deref(),
        },
    )
    .await?)
}

/// Create a user (administrators; organisation administrators: a user of
/// their own organisation, at most an organisation administrator).
#[utoipa::path(post, path = "/v1/users", request_body = NewUser, responses(
    (status = 201, body = UserJson),
    (status = 403, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn post_user(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Json(mut u): Json<NewUser>,
) -> Result<(StatusCode, axum::Json<UserJson>), ApiError> {
    scope_new_user(&caller, &mut u)?;
    let id = create_user(&wf, &u).await?;
    let c = wf.db().await?;
    Ok((StatusCode::CREATED, axum::Json(get_user(&c, id).await?)))
}

pub(crate) async fn get_user(c: &tokio_postgres::Client, id: i64) -> Result<UserJson, ApiError> {
    Ok(user_json(users::get(c, id).await?))
}

pub(crate) fn user_json(u: users::User) -> UserJson {
    UserJson {
        id: u.id,
        username: u.username,
        role: Role::parse(&u.role).unwrap_or(Role::User),
        organisation_id: u.organisation_id,
        tenant: u.tenant,
        institution_id: u.institution_id,
        email: u.email,
        display_name: u.display_name,
        locked_until: crate::ts_opt(u.locked_until),
        created_at: ts(u.created_at),
        disabled_at: crate::ts_opt(u.disabled_at),
        password_changed_at: crate::ts_opt(u.password_changed_at),
        must_change_password: u.must_change_password,
    }
}

/// `organisation_id`, `limit` and `after` of the user list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only this organisation's users.
    pub organisation_id: Option<i64>,
    /// Items in the page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the user with this id.
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

/// List users (administrators: all; organisation administrators: their
/// organisation's; reviewers: their bank's), newest first, paged (`limit`,
/// `after`; see "Paging").
#[utoipa::path(get, path = "/v1/users", params(UserQuery), responses(
    (status = 200, body = [UserJson], headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page"))),
))]
pub async fn list_users(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserReaders>,
    crate::error::Query(q): crate::error::Query<UserQuery>,
) -> Result<crate::paging::Paged<UserJson>, ApiError> {
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let (tenant, organisation) = match caller.role {
        Role::Admin => (None, q.organisation_id),
        Role::OrgAdmin => {
            if q.organisation_id.is_some() && q.organisation_id != caller.organisation_id {
                return Err(ApiError::forbidden(
                    "an organisation administrator lists their own organisation's users only",
                ));
            }
            let own = caller.organisation_id.ok_or_else(|| {
                ApiError::forbidden("this organisation administrator has no organisation")
            })?;
            (None, Some(own))
        }
        _ => (Some(caller.tenant()?.to_owned()), q.organisation_id),
    };
    let c = wf.db().await?;
    let list = users::list(
        c.client(),
        tenant.as_deref(),
        organisation,
        page.after,
        page.limit,
    )
    .await?;
    Ok(crate::paging::Paged::new(
        list.into_iter().map(user_json).collect(),
        page,
        |u| u.id,
    ))
}

/// A change of a user (administrators). Absent fields stay; `null` clears
/// `email` or `display_name`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "crate::auth::nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::auth::nullable")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// A role the user's organisation has: `reviewer`, `user` or
    /// `org_admin` in a bank or enterprise, `institution` or `org_admin` in
    /// a notary office or court. The user's sessions are revoked, so the
    /// new role applies at once.
    pub role: Option<Role>,
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::<T>::deserialize(d)?))
}

/// Edit a user's e-mail address, display name or role (administrators;
/// organisation administrators: their own organisation's users).
#[utoipa::path(patch, path = "/v1/users/{id}", params(("id" = i64, Path)), request_body = UserPatch, responses(
    (status = 200, body = UserJson),
    (status = 422, description = "`validation_failed`: an invalid address or name, or a role the organisation has not", body = crate::error::ErrorBody),
))]
pub async fn patch_user(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Path(id): Path<i64>,
    body: Result<Json<UserPatch>, ApiError>,
) -> Result<axum::Json<UserJson>, ApiError> {
    let mut c = wf.db().await?;
    let u = managed_user(c.client(), &caller, id).await?;
    let Json(p) = body?;
    let mut errs = std::collections::BTreeMap::new();
    if let Some(Some(why)) = p
        .email
        .as_ref()
        .map(|e| e.as_deref().and_then(email_problem))
    {
        errs.insert("email".into(), why);
    }
    if let Some(Some(why)) = p
        .display_name
        .as_ref()
        .map(|n| n.as_deref().and_then(display_name_problem))
    {
        errs.insert("display_name".into(), why);
    }
    let role_changes = p.role.is_some_and(|r| r.as_str() != u.role);
    if let Some(r) = p.role.filter(|_| role_changes) {
        // Within the organisation's roles only: never to or from a
        // platform administrator or an outside signer, so nobody is raised
        // above an organisation administrator.
        let from = Role::parse(&u.role);
        let in_org = |r: Role| match r {
            Role::Reviewer | Role::User => u.tenant.is_some(),
            Role::Institution => u.institution_id.is_some(),
            Role::OrgAdmin => u.organisation_id.is_some(),
            Role::Admin | Role::Signer => false,
        };
        if !(from.is_some_and(in_org) && in_org(r)) {
            errs.insert(
                "role".into(),
                "a role changes within the user's organisation only: user, reviewer or org_admin in a bank or enterprise, institution or org_admin in a notary office or court".into(),
            );
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let tx = c.transaction().await?;
    users::update(
        &*tx,
        id,
        &users::UserEdit {
            email: p.email.as_ref().map(|e| e.as_deref()),
            display_name: p.display_name.as_ref().map(|n| n.as_deref()),
            role: p.role.filter(|_| role_changes).map(Role::as_str),
        },
    )
    .await?;
    if role_changes {
        users::revoke_sessions(&*tx, id, None).await?;
    }
    tx.commit().await?;
    Ok(axum::Json(get_user(&c, id).await?))
}

// ---------------------------------------------------------------------------
// Accounts: disable, enable, passwords, sessions
// ---------------------------------------------------------------------------

/// Disable an account (administrators; organisation administrators: their
/// own organisation's): it cannot log in and every one of its sessions is
/// revoked. Nobody disables their own account.
#[utoipa::path(post, path = "/v1/users/{id}/disable", params(("id" = i64, Path)), responses(
    (status = 200, body = UserJson),
    (status = 409, description = "`conflict`: your own account", body = crate::error::ErrorBody),
))]
pub async fn disable_user(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Path(id): Path<i64>,
) -> Result<axum::Json<UserJson>, ApiError> {
    if id == caller.id {
        return Err(ApiError::conflict("you cannot disable your own account"));
    }
    let mut c = wf.db().await?;
    managed_user(c.client(), &caller, id).await?;
    let tx = c.transaction().await?;
    users::set_disabled(&*tx, id, true).await?;
    users::revoke_sessions(&*tx, id, None).await?;
    tx.commit().await?;
    Ok(axum::Json(get_user(&c, id).await?))
}

/// Enable a disabled account again (administrators; organisation
/// administrators: their own organisation's); clears a lockout.
#[utoipa::path(post, path = "/v1/users/{id}/enable", params(("id" = i64, Path)), responses(
    (status = 200, body = UserJson),
))]
pub async fn enable_user(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Path(id): Path<i64>,
) -> Result<axum::Json<UserJson>, ApiError> {
    let c = wf.db().await?;
    managed_user(c.client(), &caller, id).await?;
    users::set_disabled(c.client(), id, false).await?;
    Ok(axum::Json(get_user(&c, id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// Sessions revoked.
    pub revoked: u64,
}

/// Revoke every session of a user (administrators; organisation
/// administrators: their own organisation's).
#[utoipa::path(delete, path = "/v1/users/{id}/sessions", params(("id" = i64, Path)), responses(
    (status = 200, body = Revoked),
))]
pub async fn revoke_user_sessions(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Revoked>, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    managed_user(&*tx, &caller, id).await?;
    let revoked = users::revoke_sessions(&*tx, id, None).await?;
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
/// stays), and a reset's obligation to change it is met. Attempts count
/// against the per-username login limit (`login_per_account_per_min`).
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
    if p.new_password == p.current_password {
        return Err(ApiError::field(
            "new_password",
            "must differ from the current password",
        ));
    }
    let phc: String = {
        let c = wf.db().await?;
        users::password_hash(c.client(), caller.id).await?
    };
    if !wf.passwords.verify(&p.current_password, Some(&phc)).await? {
        return Err(ApiError::field("current_password", "wrong password"));
    }
    let new = wf.passwords.hash(&p.new_password).await?;
    let keep = current_token(&headers).map(|t| token_hash(&t));
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    users::set_password(&tx, caller.id, &new, false).await?;
    users::revoke_sessions(&*tx, caller.id, keep.as_deref()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The same rules as a new user's password.
    pub new_password: String,
    /// The user must change it at their next login (default true): until
    /// then every route but `GET /v1/me`, `PUT /v1/me/password` and
    /// logout answers 403 `password_change_required`.
    #[serde(default = "yes")]
    pub must_change: bool,
}

fn yes() -> bool {
    true
}

/// Reset a user's password (administrators; organisation administrators:
/// their own organisation's users): every session of the user is
/// revoked, a lockout cleared, and (unless `must_change` is false) the user
/// must change the password at their next login.
#[utoipa::path(put, path = "/v1/users/{id}/password", params(("id" = i64, Path)), request_body = PasswordReset, responses(
    (status = 200, body = UserJson),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn reset_password(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::UserAdmins>,
    Path(id): Path<i64>,
    body: Result<Json<PasswordReset>, ApiError>,
) -> Result<axum::Json<UserJson>, ApiError> {
    let username: String = {
        let c = wf.db().await?;
        managed_user(c.client(), &caller, id).await?.username
    };
    let Json(p) = body?;
    if let Err(why) = wf.passwords.check(&p.new_password, &username) {
        return Err(ApiError::field("new_password", why));
    }
    let new = wf.passwords.hash(&p.new_password).await?;
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    users::set_password(&tx, id, &new, p.must_change).await?;
    users::revoke_sessions(&*tx, id, None).await?;
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
    if i.name.is_empty()
        || i.name.chars().count() > 200
        || i.name.chars().any(crate::text::unfit_in_name)
    {
        errs.insert(
            "name".into(),
            "1-200 characters, no control characters or bidirectional overrides".into(),
        );
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
    // The institution and its organisation (`/v1/organisations`) at once.
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    crate::store::orgs::create_institution_org(&tx, &i.kind, &i.name, &i.id, i.fee_cents).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(i)))
}

/// An institution as listed: [`Institution`] and whether its organisation
/// is enabled (takes requests).
#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionListed {
    pub id: String,
    pub name: String,
    /// `notary` or `court`.
    pub kind: String,
    /// Notarization fee, fen (CNY cents).
    pub fee_cents: i64,
    /// `false`: its organisation is disabled and takes no requests (listed
    /// to administrators only).
    pub enabled: bool,
}

/// Notary offices and courts (with their fees). Callers who pick one (any
/// signed-in user but an administrator) see only the enabled ones;
/// administrators see every institution with its `enabled` state.
#[utoipa::path(get, path = "/v1/institutions", responses((status = 200, body = [InstitutionListed])))]
pub async fn list_institutions(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
) -> Result<axum::Json<Vec<InstitutionListed>>, ApiError> {
    let admin = caller.role == Role::Admin;
    let c = wf.db().await?;
    Ok(axum::Json(
        users::institutions(c.client(), admin)
            .await?
            .into_iter()
            .map(|(r, enabled)| InstitutionListed {
                id: r.id,
                name: r.name,
                kind: r.kind,
                fee_cents: r.fee_cents,
                enabled,
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
        Some(p) => crate::config::secret_file_line(p, "workflow.bootstrap_admin_password_file")
            .map_err(WorkflowError::Config)?,
        None => std::env::var(&wf.config.bootstrap_admin_password_env).map_err(|_| {
            WorkflowError::Config(format!(
                "workflow.bootstrap_admin is set but {} is not",
                wf.config.bootstrap_admin_password_env
            ))
        })?,
    };
    let u = NewUser::admin(name.clone(), password);
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
    let row = users::insert_admin(&*tx, username, &phc)
        .await
        .map_err(|e| WorkflowError::Db(e.to_string()))?;
    let Some(id) = row else {
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
