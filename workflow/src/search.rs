//! Search as the 众享 manual shows it (docs/workflow-api.md, "Search"):
//! the filters' validation shared by the preservation list, the contract
//! search and the combined on-chain list of 司法出证. The statements are
//! `store/search.rs`'s.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::authz::{Require, Role, roles};
use crate::error::{ApiError, Query};
use crate::status::{ContractStatus, Status};
use crate::store::search as store;
use crate::{Workflow, ts};

/// The largest `offset` a list accepts (deeper pages: `after`).
pub const MAX_OFFSET: i64 = 10_000;

/// The longest number prefix, in characters.
const MAX_NUMBER_CHARS: usize = 32;

/// A time bound of a date range: RFC 3339 (`2026-01-31T08:00:00+08:00`),
/// or a date (`2026-01-31`) in the deployment's zone (`workflow.utc_offset`),
/// which as `to` includes that whole day. 422 naming `key` otherwise.
pub fn time_bound(
    key: &str,
    v: &Option<String>,
    end: bool,
    zone: time::UtcOffset,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
    let Some(s) = v else { return Ok(None) };
    let bad = || {
        ApiError::field(
            key,
            "an RFC 3339 time (2026-01-31T08:00:00Z) or a date (2026-01-31)",
        )
    };
    if s.len() > 40 {
        return Err(bad());
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(t));
    }
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| bad())?;
    let d = if end {
        d.next_day().ok_or_else(bad)?
    } else {
        d
    };
    Ok(Some(d.midnight().assume_offset(zone)))
}

/// `from` and `to`, checked together (`from` before `to`).
pub fn range(
    from: &Option<String>,
    to: &Option<String>,
    zone: time::UtcOffset,
) -> Result<(Option<time::OffsetDateTime>, Option<time::OffsetDateTime>), ApiError> {
    let f = time_bound("from", from, false, zone)?;
    let t = time_bound("to", to, true, zone)?;
    if let (Some(a), Some(b)) = (f, t)
        && a >= b
    {
        return Err(ApiError::field("to", "must be after `from`"));
    }
    Ok((f, t))
}

/// A number prefix: 1-32 characters, uppercased (`%` and `_` are matched
/// literally).
pub fn number(v: &Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(s)
            if s.is_empty()
                || s.chars().count() > MAX_NUMBER_CHARS
                || s.chars().any(char::is_control) =>
        {
            Err(ApiError::field(
                "number",
                format!(
                    "1-{MAX_NUMBER_CHARS} characters (a number or its beginning, e.g. BQ00000000)"
                ),
            ))
        }
        Some(s) => Ok(Some(s.to_uppercase())),
    }
}

/// A full SHA-256 or SM3 in hex, any case: lowercased.
pub fn hash(v: &Option<String>) -> Result<Option<String>, ApiError> {
    crate::error::hex64("hash", v)?;
    Ok(v.as_ref().map(|h| h.to_ascii_lowercase()))
}

/// A username (the initiator).
pub fn initiator(v: &Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(u)
            if u.is_empty()
                || u.len() > 64
                || !u
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b)) =>
        {
            Err(ApiError::field("initiator", "a username"))
        }
        _ => Ok(v.clone()),
    }
}

/// An offset within [`MAX_OFFSET`].
pub fn offset(v: Option<i64>) -> Result<i64, ApiError> {
    crate::error::in_range("offset", v, 0, MAX_OFFSET)?;
    Ok(v.unwrap_or(0))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContractQuery {
    /// Number or its beginning (`HT00000000`); `%` and `_` are literal.
    pub number: Option<String>,
    pub contract_type_id: Option<i64>,
    /// `signing`, `awaiting_review`, `approved`, `on_chain`, `refused`, `rejected`.
    #[param(pattern = "^(signing|awaiting_review|approved|on_chain|refused|rejected)$")]
    pub status: Option<String>,
    /// The contract hash, 64 hex digits, any case.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub hash: Option<String>,
    /// The initiator's username.
    pub initiator: Option<String>,
    /// Created at or after: RFC 3339, or a date in the deployment's zone.
    pub from: Option<String>,
    /// Created before: RFC 3339, or a date (that whole day included).
    pub to: Option<String>,
    /// Items in the page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the contract with this id (`Anchord-Next-After`).
    #[param(minimum = 1)]
    pub after: Option<i64>,
    /// Skip this many (0-10000; prefer `after`).
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<i64>,
}

/// A contract as the search lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractHit {
    pub id: i64,
    pub number: String,
    pub tenant: String,
    pub contract_type_id: i64,
    pub contract_type: Option<String>,
    pub title: String,
    pub hash_alg: String,
    pub contract_hash: String,
    pub status: String,
    pub created_by: i64,
    /// The initiator's username.
    pub initiator: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Search the contracts the caller may read (docs/workflow-api.md,
/// "Search"): those its bank initiated and those where the caller has a
/// signer's slot (of another organisation, or as an invited outside party
/// who registered); administrators: every contract. By number, type,
/// status, hash, initiator and date range, newest first, in pages.
#[utoipa::path(get, path = "/v1/search/contracts", params(ContractQuery),
    responses((status = 200, body = [ContractHit],
        headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page")))))]
pub async fn contracts(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrSigner>,
    Query(q): Query<ContractQuery>,
) -> Result<crate::paging::Paged<ContractHit>, ApiError> {
    // The same scope as GET /v1/contracts and the contract's own page.
    let (tenant, party) = match caller.role {
        Role::Admin => (None, None),
        Role::Signer => (None, Some(caller.id)),
        _ => (Some(caller.tenant()?.to_owned()), Some(caller.id)),
    };
    crate::error::one_of(
        "status",
        &q.status,
        &crate::status::strs(ContractStatus::ALL),
    )?;
    let status = q
        .status
        .as_deref()
        .and_then(ContractStatus::parse)
        .map(|s| s.as_str());
    let (from, to) = range(&q.from, &q.to, wf.config.zone())?;
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let filter = store::Contracts {
        tenant,
        party,
        contract_type_id: q.contract_type_id,
        status,
        number: number(&q.number)?,
        hash: hash(&q.hash)?,
        initiator: initiator(&q.initiator)?,
        from,
        to,
    };
    let off = offset(q.offset)?;
    let c = wf.db().await?;
    let rows = store::contracts(
        c.client(),
        &filter,
        store::Page {
            limit: page.limit,
            after: page.after,
            offset: off,
        },
    )
    .await?;
    Ok(crate::paging::Paged::new(
        rows.into_iter()
            .map(|k| ContractHit {
                id: k.id,
                number: k.number,
                tenant: k.tenant,
                contract_type_id: k.contract_type_id,
                contract_type: k.contract_type,
                title: k.title,
                hash_alg: k.hash_alg,
                contract_hash: k.contract_hash,
                status: k.status,
                created_by: k.created_by,
                initiator: k.initiator,
                created_at: ts(k.created_at),
                updated_at: ts(k.updated_at),
            })
            .collect(),
        page,
        |k| k.id,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OnChainQuery {
    /// `preservation` or `contract` (default both).
    #[param(pattern = "^(preservation|contract)$")]
    pub kind: Option<String>,
    /// Number or its beginning; `%` and `_` are literal.
    pub number: Option<String>,
    /// The file's SHA-256 / SM3 or the contract hash, 64 hex digits.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub hash: Option<String>,
    /// Created at or after (RFC 3339 or a date).
    pub from: Option<String>,
    /// Created before (RFC 3339, or a date: that whole day included).
    pub to: Option<String>,
    /// Items in the page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the item with this `submission_id`
    /// (`Anchord-Next-After`).
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

/// A preservation or contract on chain (司法出证's subject list).
#[derive(Debug, Serialize, ToSchema)]
pub struct OnChainHit {
    /// `preservation` or `contract`.
    pub kind: String,
    pub id: i64,
    pub number: String,
    /// The product's name, or the contract's title.
    pub title: String,
    /// The file's SHA-256, or the contract hash.
    pub hash: String,
    /// Its evidence submission: the list's order and paging cursor.
    pub submission_id: i64,
    pub ledger_seq: Option<i64>,
    pub block_height: Option<i64>,
    pub created_at: String,
}

/// The preservations and contracts on chain the caller may read, in one
/// list (the subjects a 司法出证 application can name), newest submission
/// first, in pages: its bank's preservations and contracts, and the
/// contracts of other organisations where the caller has a signer's slot.
/// Bank users and reviewers only; never another organisation's record the
/// caller is no party to.
#[utoipa::path(get, path = "/v1/search/on-chain", params(OnChainQuery),
    responses((status = 200, body = [OnChainHit],
        headers(("Anchord-Next-After" = i64, description = "`after` (a submission id) for the next page, on a full page")))))]
pub async fn on_chain(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Query(q): Query<OnChainQuery>,
) -> Result<crate::paging::Paged<OnChainHit>, ApiError> {
    let tenant = caller.tenant()?.to_owned();
    crate::error::one_of("kind", &q.kind, &["preservation", "contract"])?;
    let kind = match q.kind.as_deref() {
        Some("preservation") => Some("preservation"),
        Some(_) => Some("contract"),
        None => None,
    };
    let (from, to) = range(&q.from, &q.to, wf.config.zone())?;
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let filter = store::OnChain {
        tenant,
        party: Some(caller.id),
        kind,
        number: number(&q.number)?,
        hash: hash(&q.hash)?,
        from,
        to,
    };
    let c = wf.db().await?;
    let rows = store::on_chain(c.client(), &filter, page.limit, page.after).await?;
    Ok(crate::paging::Paged::new(
        rows.into_iter()
            .map(|i| OnChainHit {
                kind: i.kind,
                id: i.id,
                number: i.number,
                title: i.title,
                hash: i.hash,
                submission_id: i.submission_id,
                ledger_seq: i.ledger_seq,
                block_height: i.block_height,
                created_at: ts(i.created_at),
            })
            .collect(),
        page,
        |i| i.submission_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds_take_rfc_3339_or_a_day_in_the_zone() {
        let z = time::UtcOffset::from_hms(8, 0, 0).expect("offset");
        let f = time_bound("from", &Some("2026-01-31".into()), false, z)
            .expect("date")
            .expect("some");
        assert_eq!(ts_utc(f), "2026-01-30T16:00:00Z");
        let t = time_bound("to", &Some("2026-01-31".into()), true, z)
            .expect("date")
            .expect("some");
        assert_eq!(ts_utc(t), "2026-01-31T16:00:00Z");
        let r = time_bound("from", &Some("2026-01-31T00:00:00Z".into()), false, z)
            .expect("rfc 3339")
            .expect("some");
        assert_eq!(ts_utc(r), "2026-01-31T00:00:00Z");
        for bad in [
            "2026-02-30",
            "yesterday",
            "2026-1-1",
            "",
            "2026-01-31T25:00:00Z",
        ] {
            let e = time_bound("from", &Some(bad.into()), false, z).expect_err(bad);
            assert_eq!(e.status, 422, "{bad}");
            assert!(e.fields.contains_key("from"), "{bad}");
        }
        let e =
            range(&Some("2026-02-01".into()), &Some("2026-01-01".into()), z).expect_err("order");
        assert!(e.fields.contains_key("to"));
    }

    fn ts_utc(t: time::OffsetDateTime) -> String {
        crate::ts(t)
    }
}

/// Values for [`explain`]'s statement shapes (tests: every search shape is
/// planned on its index).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct ExplainProbe {
    pub tenant: String,
    pub product_id: i64,
    pub hash: String,
    pub number: String,
    pub initiator: String,
    pub field: (String, String),
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

/// The EXPLAIN of each preservation search shape, by name (`product`,
/// `status`, `number`, `hash`, `initiator`, `field`, `dates`), as a bank
/// user's search runs it (tenant first).
#[doc(hidden)]
pub async fn explain(
    c: &tokio_postgres::Client,
    p: &ExplainProbe,
) -> Result<Vec<(String, String)>, ApiError> {
    let base = store::Preservations {
        tenant: Some(p.tenant.clone()),
        ..Default::default()
    };
    let shapes = [
        (
            "product",
            store::Preservations {
                product_id: Some(p.product_id),
                ..base.clone()
            },
        ),
        (
            "number",
            store::Preservations {
                number: Some(p.number.clone()),
                ..base.clone()
            },
        ),
        (
            "hash",
            store::Preservations {
                hash: Some(p.hash.clone()),
                ..base.clone()
            },
        ),
        (
            "initiator",
            store::Preservations {
                initiator: Some(p.initiator.clone()),
                ..base.clone()
            },
        ),
        (
            "field",
            store::Preservations {
                field: Some(p.field.clone()),
                ..base.clone()
            },
        ),
        (
            "dates",
            store::Preservations {
                from: p.from,
                to: p.to,
                ..base.clone()
            },
        ),
    ];
    Ok(store::explain(c, &shapes).await?)
}
