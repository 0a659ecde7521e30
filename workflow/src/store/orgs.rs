//! Organisations: banks and enterprises (each maps to its ledger tenant),
//! notary offices and courts (each is one `workflow.institutions` row).
//! Every SQL statement on `workflow.organisations`.

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;

/// The kinds of organisation (the `organisations.kind` check).
pub const KINDS: &[&str] = &["bank", "enterprise", "notary", "court"];

/// An organisation as stored.
#[derive(Debug, Clone)]
pub struct Organisation {
    pub id: i64,
    /// `bank`, `enterprise`, `notary` or `court`.
    pub kind: String,
    pub name: String,
    pub tenant: Option<String>,
    pub institution_id: Option<String>,
    /// The institution's fee (notary offices and courts).
    pub fee_cents: Option<i64>,
    pub disabled_at: Option<time::OffsetDateTime>,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
    /// Users of the organisation.
    pub users: i64,
}

const COLUMNS: &str =
    "o.id, o.kind, o.name, o.tenant, o.institution_id, i.fee_cents, o.disabled_at,
    o.created_at, o.updated_at,
    (SELECT count(*) FROM workflow.users u WHERE u.organisation_id = o.id)";
const FROM: &str =
    "workflow.organisations o LEFT JOIN workflow.institutions i ON i.id = o.institution_id";

fn from_row(r: &tokio_postgres::Row) -> Result<Organisation, StoreError> {
    Ok(Organisation {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        name: r.try_get(2)?,
        tenant: r.try_get(3)?,
        institution_id: r.try_get(4)?,
        fee_cents: r.try_get(5)?,
        disabled_at: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        users: r.try_get(9)?,
    })
}

/// The organisation `id`.
pub async fn get<C: GenericClient + Sync>(c: &C, id: i64) -> Result<Organisation, StoreError> {
    let r = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM {FROM} WHERE o.id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("organisation"))?;
    from_row(&r)
}

/// Organisations, newest first, keyset-paged, of `kind` when given.
pub async fn list<C: GenericClient + Sync>(
    c: &C,
    kind: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Organisation>, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM {FROM}
                  WHERE ($1::text IS NULL OR o.kind = $1) AND ($2::bigint IS NULL OR o.id < $2)
                  ORDER BY o.id DESC LIMIT $3"
            ),
            &[&kind, &after, &limit],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// A new bank or enterprise for ledger tenant `tenant`; `Conflict` when the
/// tenant has an organisation.
pub async fn create_tenant_org<C: GenericClient + Sync>(
    c: &C,
    kind: &str,
    name: &str,
    tenant: &str,
) -> Result<i64, StoreError> {
    c.query_opt(
        "INSERT INTO workflow.organisations (kind, name, tenant) VALUES ($1, $2, $3)
         ON CONFLICT (tenant) DO NOTHING RETURNING id",
        &[&kind, &name, &tenant],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::Conflict("an organisation with this tenant exists".into()))
}

/// A new notary office or court: its institution row and its organisation,
/// in `tx`; `Conflict` when the institution id is taken.
pub async fn create_institution_org(
    tx: &Transaction<'_>,
    kind: &str,
    name: &str,
    institution_id: &str,
    fee_cents: i64,
) -> Result<i64, StoreError> {
    let inst = super::users::Institution {
        id: institution_id.to_owned(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        fee_cents,
    };
    if !super::users::insert_institution(tx, &inst).await? {
        return Err(StoreError::Conflict(
            "an institution with this id exists".into(),
        ));
    }
    Ok(tx
        .query_one(
            "INSERT INTO workflow.organisations (kind, name, institution_id) VALUES ($1, $2, $3)
             RETURNING id",
            &[&kind, &name, &institution_id],
        )
        .await?
        .get(0))
}

/// The organisation of ledger tenant `tenant`, created as a bank (named
/// after the tenant) when there is none: how `POST /v1/users` with a bare
/// `tenant` (API v1) keeps working.
pub async fn ensure_tenant_org<C: GenericClient + Sync>(
    c: &C,
    tenant: &str,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO workflow.organisations (kind, name, tenant) VALUES ('bank', $1, $1)
         ON CONFLICT (tenant) DO NOTHING",
        &[&tenant],
    )
    .await?;
    Ok(c.query_one(
        "SELECT id FROM workflow.organisations WHERE tenant = $1",
        &[&tenant],
    )
    .await?
    .get(0))
}

/// The organisation of institution `id`, if any.
pub async fn of_institution<C: GenericClient + Sync>(
    c: &C,
    institution_id: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(c.query_opt(
        "SELECT id FROM workflow.organisations WHERE institution_id = $1",
        &[&institution_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Rename an organisation and (institutions) change its fee.
pub async fn update(
    tx: &Transaction<'_>,
    id: i64,
    name: Option<&str>,
    fee_cents: Option<i64>,
) -> Result<(), StoreError> {
    let r = tx
        .query_opt(
            "UPDATE workflow.organisations SET name = coalesce($2, name), updated_at = now()
              WHERE id = $1 RETURNING institution_id",
            &[&id, &name],
        )
        .await?
        .ok_or(StoreError::NotFound("organisation"))?;
    let inst: Option<String> = r.try_get(0)?;
    if let Some(inst) = inst {
        tx.execute(
            "UPDATE workflow.institutions SET name = coalesce($2, name),
                    fee_cents = coalesce($3, fee_cents)
              WHERE id = $1",
            &[&inst, &name, &fee_cents],
        )
        .await?;
    }
    Ok(())
}

/// Disable (`true`) or enable an organisation. Disabling revokes every live
/// session of its users (their logins are refused while it stays
/// disabled); returns the sessions revoked.
pub async fn set_disabled(
    tx: &Transaction<'_>,
    id: i64,
    disabled: bool,
) -> Result<u64, StoreError> {
    let n = tx
        .execute(
            "UPDATE workflow.organisations
                SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END,
                    updated_at = now()
              WHERE id = $1",
            &[&id, &disabled],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("organisation"));
    }
    if !disabled {
        return Ok(0);
    }
    Ok(tx
        .execute(
            "UPDATE workflow.sessions s SET revoked_at = now()
               FROM workflow.users u
              WHERE u.id = s.user_id AND u.organisation_id = $1
                AND s.revoked_at IS NULL AND s.expires_at > now()",
            &[&id],
        )
        .await?)
}
