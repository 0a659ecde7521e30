//! Users, sessions and institutions: every SQL statement of login, session
//! resolution and account management (`auth.rs`, `authz.rs`).
//!
//! Roles travel as their SQL text here; `authz::Role` parses them (this
//! module does not depend on `authz`, which resolves sessions through it).

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub tenant: Option<String>,
    pub institution_id: Option<String>,
    pub organisation_id: Option<i64>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub locked_until: Option<time::OffsetDateTime>,
    pub created_at: time::OffsetDateTime,
    pub disabled_at: Option<time::OffsetDateTime>,
    pub password_changed_at: Option<time::OffsetDateTime>,
    pub must_change_password: bool,
}

const COLUMNS: &str =
    "id, username, role, tenant, institution_id, organisation_id, email, display_name,
    locked_until, created_at, disabled_at, password_changed_at, must_change_password";

fn from_row(r: &tokio_postgres::Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        role: r.try_get(2)?,
        tenant: r.try_get(3)?,
        institution_id: r.try_get(4)?,
        organisation_id: r.try_get(5)?,
        email: r.try_get(6)?,
        display_name: r.try_get(7)?,
        locked_until: r.try_get(8)?,
        created_at: r.try_get(9)?,
        disabled_at: r.try_get(10)?,
        password_changed_at: r.try_get(11)?,
        must_change_password: r.try_get(12)?,
    })
}

/// The user `id`.
pub async fn get<C: GenericClient + Sync>(c: &C, id: i64) -> Result<User, StoreError> {
    let r = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM workflow.users WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    from_row(&r)
}

/// Users, newest first, keyset-paged; `tenant` / `organisation` narrow the
/// list when given.
pub async fn list<C: GenericClient + Sync>(
    c: &C,
    tenant: Option<&str>,
    organisation: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<User>, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM workflow.users
                  WHERE ($1::text IS NULL OR tenant = $1)
                    AND ($2::bigint IS NULL OR organisation_id = $2)
                    AND ($3::bigint IS NULL OR id < $3)
                  ORDER BY id DESC LIMIT $4"
            ),
            &[&tenant, &organisation, &after, &limit],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// What a new user is stored with (the password already hashed).
#[derive(Debug)]
pub struct NewUserRow<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    /// `None` for administrators only.
    pub organisation_id: Option<i64>,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

/// Insert a user; `Conflict` when the username is taken. The tenant and
/// institution come from the organisation (the `users_organisation`
/// trigger).
pub async fn insert<C: GenericClient + Sync>(c: &C, u: &NewUserRow<'_>) -> Result<i64, StoreError> {
    let row = c
        .query_opt(
            "INSERT INTO workflow.users
                 (username, password_hash, role, organisation_id, email, display_name)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
            &[
                &u.username,
                &u.password_hash,
                &u.role,
                &u.organisation_id,
                &u.email,
                &u.display_name,
            ],
        )
        .await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| StoreError::Conflict("a user with this username exists".into()))
}

/// The stored password hash (PHC string) of user `id`.
pub async fn password_hash<C: GenericClient + Sync>(c: &C, id: i64) -> Result<String, StoreError> {
    Ok(c.query_opt(
        "SELECT password_hash FROM workflow.users WHERE id = $1",
        &[&id],
    )
    .await?
    .ok_or(StoreError::NotFound("user"))?
    .get(0))
}

/// Store a new password; `must_change`: the user must change it at their
/// next login (an administrator's reset). A lockout is cleared.
pub async fn set_password(
    tx: &Transaction<'_>,
    id: i64,
    password_hash: &str,
    must_change: bool,
) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "UPDATE workflow.users SET password_hash = $2, password_changed_at = now(),
                    must_change_password = $3, failed_logins = 0, locked_until = NULL
              WHERE id = $1",
            &[&id, &password_hash, &must_change],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Disable (`true`) or enable a user; enabling clears a lockout.
pub async fn set_disabled<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    disabled: bool,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE workflow.users
                SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END,
                    failed_logins = CASE WHEN $2 THEN failed_logins ELSE 0 END,
                    locked_until = CASE WHEN $2 THEN locked_until ELSE NULL END
              WHERE id = $1",
            &[&id, &disabled],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// A change of a user's profile: `Some(None)` clears a field.
#[derive(Debug, Default)]
pub struct UserEdit<'a> {
    pub email: Option<Option<&'a str>>,
    pub display_name: Option<Option<&'a str>>,
    pub role: Option<&'a str>,
}

/// Apply `e` to user `id`.
pub async fn update<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    e: &UserEdit<'_>,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE workflow.users
                SET email = CASE WHEN $2 THEN $3 ELSE email END,
                    display_name = CASE WHEN $4 THEN $5 ELSE display_name END,
                    role = coalesce($6, role)
              WHERE id = $1",
            &[
                &id,
                &e.email.is_some(),
                &e.email.flatten(),
                &e.display_name.is_some(),
                &e.display_name.flatten(),
                &e.role,
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Create an administrator (`anchord workflow create-admin`); `None` when
/// the username is taken.
pub async fn insert_admin<C: GenericClient + Sync>(
    c: &C,
    username: &str,
    password_hash: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(c.query_opt(
        "INSERT INTO workflow.users (username, password_hash, role) VALUES ($1, $2, 'admin')
             ON CONFLICT DO NOTHING RETURNING id",
        &[&username, &password_hash],
    )
    .await?
    .map(|r| r.get(0)))
}

// ---------------------------------------------------------------------------
// Login and sessions
// ---------------------------------------------------------------------------

/// A login attempt as counted.
#[derive(Debug)]
pub struct Attempt {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub tenant: Option<String>,
    pub institution_id: Option<String>,
    pub organisation_id: Option<i64>,
    pub must_change_password: bool,
    pub password_hash: String,
    /// `failed_logins` after counting this attempt.
    pub count: i32,
    pub locked: bool,
    /// The account or its organisation is disabled.
    pub disabled: bool,
}

/// Count a login attempt atomically (one statement under the row's lock)
/// before any password is checked: a lock reached by concurrent attempts
/// holds for every attempt counted after it, and at most `threshold`
/// passwords are checked per lock period however many arrive at once.
pub async fn count_attempt<C: GenericClient + Sync>(
    c: &C,
    username: &str,
    threshold: i32,
    lockout_s: f64,
) -> Result<Option<Attempt>, StoreError> {
    let r = c
        .query_opt(
            "WITH old AS (
                 SELECT u.id, u.locked_until IS NOT NULL AND u.locked_until > now() AS locked,
                        u.disabled_at IS NOT NULL OR coalesce(o.disabled_at IS NOT NULL, false) AS disabled
                   FROM workflow.users u LEFT JOIN workflow.organisations o ON o.id = u.organisation_id
                  WHERE u.username = $1 FOR UPDATE OF u)
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
          RETURNING u.id, u.username, u.role, u.tenant, u.institution_id, u.organisation_id,
                    u.must_change_password, u.password_hash, u.failed_logins, old.locked, old.disabled",
            &[&username, &threshold, &lockout_s],
        )
        .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(Attempt {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        role: r.try_get(2)?,
        tenant: r.try_get(3)?,
        institution_id: r.try_get(4)?,
        organisation_id: r.try_get(5)?,
        must_change_password: r.try_get(6)?,
        password_hash: r.try_get(7)?,
        count: r.try_get(8)?,
        locked: r.try_get(9)?,
        disabled: r.try_get(10)?,
    }))
}

/// A new session for `user`, valid for `ttl_s`; returns its expiry.
pub async fn create_session(
    tx: &Transaction<'_>,
    token_hash: &[u8],
    user: i64,
    ttl_s: f64,
) -> Result<time::OffsetDateTime, StoreError> {
    Ok(tx
        .query_one(
            "INSERT INTO workflow.sessions (token_hash, user_id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at",
            &[&token_hash, &user, &ttl_s],
        )
        .await?
        .get(0))
}

/// Clear the failure count (and a lock this attempt engaged) only when no
/// other attempt was counted after this one (`count`): a concurrent right
/// password never clears a lock that concurrent wrong ones reached.
pub async fn clear_failures(tx: &Transaction<'_>, user: i64, count: i32) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workflow.users SET failed_logins = 0, locked_until = NULL
          WHERE id = $1 AND failed_logins = $2",
        &[&user, &count],
    )
    .await?;
    Ok(())
}

/// Revoke the session `token_hash` of `user` (logout).
pub async fn revoke_session<C: GenericClient + Sync>(
    c: &C,
    token_hash: &[u8],
    user: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.sessions SET revoked_at = now() WHERE token_hash = $1 AND user_id = $2",
        &[&token_hash, &user],
    )
    .await?;
    Ok(())
}

/// Revoke every live session of `user` (but `keep`, the caller's own).
pub async fn revoke_sessions<C: GenericClient + Sync>(
    c: &C,
    user: i64,
    keep: Option<&[u8]>,
) -> Result<u64, StoreError> {
    Ok(c.execute(
        "UPDATE workflow.sessions SET revoked_at = now()
              WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
                AND ($2::bytea IS NULL OR token_hash <> $2)",
        &[&user, &keep],
    )
    .await?)
}

/// Delete sessions that expired or were revoked more than `grace_s` ago;
/// returns how many.
pub async fn purge_sessions<C: GenericClient + Sync>(
    c: &C,
    grace_s: f64,
) -> Result<u64, StoreError> {
    Ok(c.execute(
        "DELETE FROM workflow.sessions
          WHERE expires_at < now() - make_interval(secs => $1)
             OR revoked_at < now() - make_interval(secs => $1)",
        &[&grace_s],
    )
    .await?)
}

/// A session and its user, as resolved for a request.
#[derive(Debug)]
pub struct Session {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub tenant: Option<String>,
    pub institution_id: Option<String>,
    pub organisation_id: Option<i64>,
    pub must_change_password: bool,
    pub expired: bool,
    pub revoked: bool,
    pub user_disabled: bool,
    pub organisation_disabled: bool,
}

/// The session of `token_hash`, if there is one.
pub async fn session<C: GenericClient + Sync>(
    c: &C,
    token_hash: &[u8],
) -> Result<Option<Session>, StoreError> {
    let r = c
        .query_opt(
            "SELECT u.id, u.username, u.role, u.tenant, u.institution_id, u.organisation_id,
                    u.must_change_password, s.expires_at <= now(), s.revoked_at IS NOT NULL,
                    u.disabled_at IS NOT NULL, coalesce(o.disabled_at IS NOT NULL, false)
               FROM workflow.sessions s JOIN workflow.users u ON u.id = s.user_id
               LEFT JOIN workflow.organisations o ON o.id = u.organisation_id
              WHERE s.token_hash = $1",
            &[&token_hash],
        )
        .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(Session {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        role: r.try_get(2)?,
        tenant: r.try_get(3)?,
        institution_id: r.try_get(4)?,
        organisation_id: r.try_get(5)?,
        must_change_password: r.try_get(6)?,
        expired: r.try_get(7)?,
        revoked: r.try_get(8)?,
        user_disabled: r.try_get(9)?,
        organisation_disabled: r.try_get(10)?,
    }))
}

// ---------------------------------------------------------------------------
// Institutions (the judicial organisations' own rows)
// ---------------------------------------------------------------------------

/// An institution as stored.
#[derive(Debug, Clone)]
pub struct Institution {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub fee_cents: i64,
}

/// Insert an institution; `false` when its id is taken.
pub async fn insert_institution<C: GenericClient + Sync>(
    c: &C,
    i: &Institution,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "INSERT INTO workflow.institutions (id, name, kind, fee_cents) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
        &[&i.id, &i.name, &i.kind, &i.fee_cents],
    )
    .await?
        == 1)
}

/// Every institution, by id, with whether its organisation is enabled;
/// `include_disabled` false leaves the disabled ones out.
pub async fn institutions<C: GenericClient + Sync>(
    c: &C,
    include_disabled: bool,
) -> Result<Vec<(Institution, bool)>, StoreError> {
    let rows = c
        .query(
            "SELECT i.id, i.name, i.kind, i.fee_cents, o.disabled_at IS NULL
               FROM workflow.institutions i
               LEFT JOIN workflow.organisations o ON o.institution_id = i.id
              WHERE $1 OR o.disabled_at IS NULL ORDER BY i.id",
            &[&include_disabled],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                Institution {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    fee_cents: r.try_get(3)?,
                },
                r.try_get(4)?,
            ))
        })
        .collect()
}
