//! Search as the manual shows it (docs/workflow-api.md, "Search"):
//! preservations and contracts by number, hash, product or type, status,
//! initiator, a template field's value and a date range, and the combined
//! on-chain list of 司法出证. Read-only; the contracts' tables belong to
//! the contracts feature and are only read here.
//!
//! Each query is built from the filters present (never a `$n IS NULL OR`
//! chain), so each shape is planned on its own index (migration 0009):
//! every filter of a non-administrator starts with the tenant; a field
//! value is matched by containment (`fields @> {"key": "value"}`) on the
//! GIN index; a number by prefix on a `text_pattern_ops` index, with `%`,
//! `_` and `\` escaped so that they are literal. Pages are keyset (`id <
//! after`, newest first) with a hard size cap, and offsets are bounded.

use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::StoreError;
use super::preservations::{COLUMNS, Preservation, from_row};

/// A statement's conditions and parameters, numbered as they are added.
#[derive(Default)]
struct Sql {
    conds: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Bind `v`; returns its placeholder (`$n`).
    fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    fn cond(&mut self, c: String) {
        self.conds.push(c);
    }

    fn where_clause(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// `s` as a LIKE pattern that matches itself literally, then anything
/// (the escape character is `\`, PostgreSQL's default).
pub fn like_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Keyset page: at most `limit` rows below `after`, skipping `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub after: Option<i64>,
    pub offset: i64,
}

/// What a preservation search selects (every filter optional).
#[derive(Debug, Default, Clone)]
pub struct Preservations {
    /// Non-administrators: always their own bank.
    pub tenant: Option<String>,
    pub product_id: Option<i64>,
    pub status: Option<&'static str>,
    /// Number prefix (a whole number matches itself), uppercased.
    pub number: Option<String>,
    /// Lowercase hex SHA-256 or SM3 of the file.
    pub hash: Option<String>,
    /// The creator's username.
    pub initiator: Option<String>,
    /// (field key, value): the field equals the value.
    pub field: Option<(String, String)>,
    /// Created at or after.
    pub from: Option<time::OffsetDateTime>,
    /// Created before.
    pub to: Option<time::OffsetDateTime>,
}

/// The preservation search's statement (also for EXPLAIN in tests).
fn preservations_sql(f: &Preservations, page: Page) -> (String, Sql) {
    let mut q = Sql::default();
    if let Some(t) = &f.tenant {
        let p = q.bind(t.clone());
        q.cond(format!("tenant = {p}"));
    }
    if let Some(id) = f.product_id {
        let p = q.bind(id);
        q.cond(format!("product_id = {p}"));
    }
    if let Some(s) = f.status {
        let p = q.bind(s.to_owned());
        q.cond(format!("status = {p}"));
    }
    if let Some(n) = &f.number {
        let p = q.bind(like_prefix(n));
        q.cond(format!("number LIKE {p}"));
    }
    if let Some(h) = &f.hash {
        let p = q.bind(h.clone());
        q.cond(format!("(file_sha256 = {p} OR file_sm3 = {p})"));
    }
    if let Some(u) = &f.initiator {
        let p = q.bind(u.clone());
        q.cond(format!(
            "created_by = (SELECT id FROM workflow.users WHERE username = {p})"
        ));
    }
    if let Some((k, v)) = &f.field {
        let mut m = serde_json::Map::new();
        m.insert(k.clone(), serde_json::Value::String(v.clone()));
        let p = q.bind(serde_json::Value::Object(m));
        q.cond(format!("fields @> {p}"));
    }
    if let Some(t) = f.from {
        let p = q.bind(t);
        q.cond(format!("created_at >= {p}"));
    }
    if let Some(t) = f.to {
        let p = q.bind(t);
        q.cond(format!("created_at < {p}"));
    }
    if let Some(a) = page.after {
        let p = q.bind(a);
        q.cond(format!("id < {p}"));
    }
    let limit = q.bind(page.limit);
    let offset = q.bind(page.offset);
    let sql = format!(
        "SELECT {COLUMNS} FROM workflow.preservations {} ORDER BY id DESC LIMIT {limit} OFFSET {offset}",
        q.where_clause()
    );
    (sql, q)
}

/// Preservations matching `f`, newest first.
pub async fn preservations<C: GenericClient + Sync>(
    c: &C,
    f: &Preservations,
    page: Page,
) -> Result<Vec<Preservation>, StoreError> {
    let (sql, q) = preservations_sql(f, page);
    c.query(&sql, &q.refs())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// What a contract search selects (every filter optional).
#[derive(Debug, Default, Clone)]
pub struct Contracts {
    /// Contracts this bank initiated ...
    pub tenant: Option<String>,
    /// ... or (either) where this user has a signer's slot: a signer of any
    /// organisation, or an invited outside party who registered. Neither:
    /// every contract (administrators).
    pub party: Option<i64>,
    pub contract_type_id: Option<i64>,
    pub status: Option<&'static str>,
    pub number: Option<String>,
    pub hash: Option<String>,
    pub initiator: Option<String>,
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

/// A contract as the search lists it (no body, no signers).
#[derive(Debug, Clone)]
pub struct Contract {
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
    pub initiator: Option<String>,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

/// The contracts of `alias` a caller sees: those of the bank bound as
/// `tenant`, or where the user bound as `party` has a signer's slot (one
/// definition for the contract search and the on-chain list).
fn visible(alias: &str, tenant: Option<String>, party: Option<String>) -> Option<String> {
    let slot = |u: &str| {
        format!(
            "EXISTS (SELECT 1 FROM workflow.contract_signers cs
                      WHERE cs.contract_id = {alias}.id AND cs.user_id = {u})"
        )
    };
    match (tenant, party) {
        (Some(t), Some(u)) => Some(format!("({alias}.tenant = {t} OR {})", slot(&u))),
        (Some(t), None) => Some(format!("{alias}.tenant = {t}")),
        (None, Some(u)) => Some(slot(&u)),
        (None, None) => None,
    }
}

fn contracts_sql(f: &Contracts, page: Page) -> (String, Sql) {
    let mut q = Sql::default();
    let tenant = f.tenant.as_ref().map(|t| q.bind(t.clone()));
    let party = f.party.map(|u| q.bind(u));
    if let Some(c) = visible("k", tenant, party) {
        q.cond(c);
    }
    if let Some(id) = f.contract_type_id {
        let p = q.bind(id);
        q.cond(format!("k.contract_type_id = {p}"));
    }
    if let Some(s) = f.status {
        let p = q.bind(s.to_owned());
        q.cond(format!("k.status = {p}"));
    }
    if let Some(n) = &f.number {
        let p = q.bind(like_prefix(n));
        q.cond(format!("k.number LIKE {p}"));
    }
    if let Some(h) = &f.hash {
        let p = q.bind(h.clone());
        q.cond(format!("k.contract_hash = {p}"));
    }
    if let Some(u) = &f.initiator {
        let p = q.bind(u.clone());
        q.cond(format!(
            "k.created_by = (SELECT id FROM workflow.users WHERE username = {p})"
        ));
    }
    if let Some(t) = f.from {
        let p = q.bind(t);
        q.cond(format!("k.created_at >= {p}"));
    }
    if let Some(t) = f.to {
        let p = q.bind(t);
        q.cond(format!("k.created_at < {p}"));
    }
    if let Some(a) = page.after {
        let p = q.bind(a);
        q.cond(format!("k.id < {p}"));
    }
    let limit = q.bind(page.limit);
    let offset = q.bind(page.offset);
    let sql = format!(
        "SELECT k.id, k.number, k.tenant, k.contract_type_id, t.name, k.title, k.hash_alg, k.contract_hash,
                k.status, k.created_by, u.username, k.created_at, k.updated_at
           FROM workflow.contracts k
           LEFT JOIN workflow.contract_types t ON t.id = k.contract_type_id
           LEFT JOIN workflow.users u ON u.id = k.created_by
           {} ORDER BY k.id DESC LIMIT {limit} OFFSET {offset}",
        q.where_clause()
    );
    (sql, q)
}

/// Contracts matching `f`, newest first.
pub async fn contracts<C: GenericClient + Sync>(
    c: &C,
    f: &Contracts,
    page: Page,
) -> Result<Vec<Contract>, StoreError> {
    let (sql, q) = contracts_sql(f, page);
    c.query(&sql, &q.refs())
        .await?
        .iter()
        .map(|r| {
            Ok(Contract {
                id: r.try_get(0)?,
                number: r.try_get(1)?,
                tenant: r.try_get(2)?,
                contract_type_id: r.try_get(3)?,
                contract_type: r.try_get(4)?,
                title: r.try_get(5)?,
                hash_alg: r.try_get(6)?,
                contract_hash: r.try_get(7)?,
                status: r.try_get(8)?,
                created_by: r.try_get(9)?,
                initiator: r.try_get(10)?,
                created_at: r.try_get(11)?,
                updated_at: r.try_get(12)?,
            })
        })
        .collect()
}

/// What the on-chain list selects.
#[derive(Debug, Default, Clone)]
pub struct OnChain {
    /// The applicant's bank (always set): its preservations and contracts.
    pub tenant: String,
    /// And the contracts of other organisations where this user has a
    /// signer's slot.
    pub party: Option<i64>,
    /// `preservation` or `contract`; both when absent.
    pub kind: Option<&'static str>,
    pub number: Option<String>,
    pub hash: Option<String>,
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

/// A preservation or contract on chain.
#[derive(Debug, Clone)]
pub struct OnChainItem {
    pub kind: String,
    pub id: i64,
    pub number: String,
    /// The product's name or the contract's title.
    pub title: String,
    /// The file's SHA-256 or the contract hash.
    pub hash: String,
    /// The evidence submission (the list's order and cursor).
    pub submission_id: i64,
    pub ledger_seq: Option<i64>,
    pub block_height: Option<i64>,
    pub created_at: time::OffsetDateTime,
}

fn on_chain_sql(f: &OnChain, limit: i64, after: Option<i64>) -> (String, Sql) {
    let mut q = Sql::default();
    let tenant = q.bind(f.tenant.clone());
    // Bound only when the contracts are queried: every parameter must be
    // used by the statement.
    let contracts_visible = if f.kind == Some("preservation") {
        String::new()
    } else {
        visible("x", Some(tenant.clone()), f.party.map(|u| q.bind(u)))
            .unwrap_or_else(|| format!("x.tenant = {tenant}"))
    };
    let mut extra = Vec::new();
    if let Some(n) = &f.number {
        let p = q.bind(like_prefix(n));
        extra.push(format!("x.number LIKE {p}"));
    }
    if let Some(t) = f.from {
        let p = q.bind(t);
        extra.push(format!("x.created_at >= {p}"));
    }
    if let Some(t) = f.to {
        let p = q.bind(t);
        extra.push(format!("x.created_at < {p}"));
    }
    if let Some(a) = after {
        let p = q.bind(a);
        extra.push(format!("x.submission_id < {p}"));
    }
    let hash = f.hash.as_ref().map(|h| q.bind(h.clone()));
    let limit = q.bind(limit);
    let cond = |hash_cond: Option<String>| {
        let mut c = extra.clone();
        c.extend(hash_cond);
        c.iter().map(|c| format!(" AND {c}")).collect::<String>()
    };
    let pres = format!(
        "SELECT 'preservation'::text AS kind, x.id, x.number, p.name AS title, x.file_sha256 AS hash,
                x.submission_id, s.ledger_seq, s.block_height, x.created_at
           FROM workflow.preservations x
           JOIN workflow.products p ON p.id = x.product_id
           JOIN workflow.submissions s ON s.id = x.submission_id
          WHERE x.tenant = {tenant} AND x.status = 'on_chain'{}
          ORDER BY x.submission_id DESC LIMIT {limit}",
        cond(
            hash.as_ref()
                .map(|h| format!("(x.file_sha256 = {h} OR x.file_sm3 = {h})"))
        )
    );
    let cons = format!(
        "SELECT 'contract'::text AS kind, x.id, x.number, x.title, x.contract_hash AS hash,
                x.submission_id, s.ledger_seq, s.block_height, x.created_at
           FROM workflow.contracts x
           JOIN workflow.submissions s ON s.id = x.submission_id
          WHERE {contracts_visible} AND x.status = 'on_chain'{}
          ORDER BY x.submission_id DESC LIMIT {limit}",
        cond(hash.as_ref().map(|h| format!("x.contract_hash = {h}")))
    );
    let sql = match f.kind {
        Some("preservation") => pres,
        Some(_) => cons,
        None => format!(
            "SELECT * FROM (({pres}) UNION ALL ({cons})) u ORDER BY submission_id DESC LIMIT {limit}"
        ),
    };
    (sql, q)
}

/// The applicant's preservations and contracts on chain, newest
/// submission first.
pub async fn on_chain<C: GenericClient + Sync>(
    c: &C,
    f: &OnChain,
    limit: i64,
    after: Option<i64>,
) -> Result<Vec<OnChainItem>, StoreError> {
    let (sql, q) = on_chain_sql(f, limit, after);
    c.query(&sql, &q.refs())
        .await?
        .iter()
        .map(|r| {
            Ok(OnChainItem {
                kind: r.try_get(0)?,
                id: r.try_get(1)?,
                number: r.try_get(2)?,
                title: r.try_get(3)?,
                hash: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                submission_id: r.try_get(5)?,
                ledger_seq: r.try_get(6)?,
                block_height: r.try_get(7)?,
                created_at: r.try_get(8)?,
            })
        })
        .collect()
}

/// The plans of the search statements, for the index check of the tests:
/// (shape, EXPLAIN output).
pub async fn explain<C: GenericClient + Sync>(
    c: &C,
    shapes: &[(&str, Preservations)],
) -> Result<Vec<(String, String)>, StoreError> {
    let page = Page {
        limit: 100,
        after: None,
        offset: 0,
    };
    let mut out = Vec::new();
    for (name, f) in shapes {
        let (sql, q) = preservations_sql(f, page);
        let plan = c
            .query(&format!("EXPLAIN {sql}"), &q.refs())
            .await?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()?
            .join("\n");
        out.push(((*name).to_owned(), plan));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_keep_wildcards_literal() {
        assert_eq!(like_prefix("BQ00"), "BQ00%");
        assert_eq!(like_prefix("a%b_c\\d"), "a\\%b\\_c\\\\d%");
        assert_eq!(like_prefix(""), "%");
    }

    /// Every bound parameter is used by its statement (PostgreSQL refuses
    /// a parameter it cannot type: a 500), for each kind and scope of the
    /// on-chain list and of the contract search.
    #[test]
    fn every_bound_parameter_is_used() {
        let used = |sql: &str, n: usize| {
            (1..=n).all(|i| {
                let p = format!("${i}");
                sql.match_indices(&p)
                    .any(|(at, _)| !sql[at + p.len()..].starts_with(|c: char| c.is_ascii_digit()))
            })
        };
        for kind in [None, Some("preservation"), Some("contract")] {
            for party in [None, Some(7)] {
                let (sql, q) = on_chain_sql(
                    &OnChain {
                        tenant: "bank-a".into(),
                        party,
                        kind,
                        hash: Some("ab".into()),
                        ..OnChain::default()
                    },
                    10,
                    Some(3),
                );
                assert!(used(&sql, q.params.len()), "{kind:?} {party:?}: {sql}");
            }
        }
        for (tenant, party) in [
            (None, None),
            (Some("bank-a"), None),
            (None, Some(7)),
            (Some("bank-a"), Some(7)),
        ] {
            let (sql, q) = contracts_sql(
                &Contracts {
                    tenant: tenant.map(str::to_owned),
                    party,
                    ..Contracts::default()
                },
                Page {
                    limit: 10,
                    after: None,
                    offset: 0,
                },
            );
            assert!(used(&sql, q.params.len()), "{tenant:?} {party:?}: {sql}");
        }
    }

    #[test]
    fn statements_name_only_the_filters_given() {
        let (sql, q) = preservations_sql(
            &Preservations {
                tenant: Some("bank-a".into()),
                field: Some(("idNo".into(), "1".into())),
                ..Preservations::default()
            },
            Page {
                limit: 10,
                after: Some(5),
                offset: 0,
            },
        );
        assert!(
            sql.contains("tenant = $1 AND fields @> $2 AND id < $3"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $4 OFFSET $5"), "{sql}");
        assert_eq!(q.params.len(), 5);
        assert!(!sql.contains("IS NULL"), "{sql}");
    }
}
