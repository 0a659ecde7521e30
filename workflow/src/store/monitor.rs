//! The monitoring summary's counts over the workflow's tables.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use super::StoreError;

/// The counts the summary shows.
#[derive(Debug, Default)]
pub struct Counts {
    pub preservations: BTreeMap<String, i64>,
    pub contracts: BTreeMap<String, i64>,
    pub users: BTreeMap<String, i64>,
    pub judicial_requests: i64,
    pub submissions_unpublished: i64,
    pub oldest_unpublished_s: Option<f64>,
    pub submissions_unsealed: i64,
    pub webhooks_pending: i64,
    pub webhooks_failed: i64,
}

async fn by<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
) -> Result<BTreeMap<String, i64>, StoreError> {
    c.query(sql, &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Every count of the summary.
pub async fn counts<C: GenericClient + Sync>(c: &C) -> Result<Counts, StoreError> {
    let preservations = by(
        c,
        "SELECT status, count(*) FROM workflow.preservations GROUP BY status",
    )
    .await?;
    let contracts = by(
        c,
        "SELECT status, count(*) FROM workflow.contracts GROUP BY status",
    )
    .await?;
    let users = by(c, "SELECT role, count(*) FROM workflow.users GROUP BY role").await?;
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM workflow.judicial_requests),
                    (SELECT count(*) FROM workflow.submissions WHERE state = 'pending'),
                    (SELECT extract(epoch FROM now() - min(created_at))::float8
                       FROM workflow.submissions WHERE state = 'pending'),
                    (SELECT count(*) FROM workflow.submissions WHERE state IN ('published', 'recorded')),
                    (SELECT count(*) FROM workflow.webhook_deliveries WHERE state = 'pending'),
                    (SELECT count(*) FROM workflow.webhook_deliveries WHERE state = 'failed')",
            &[],
        )
        .await?;
    Ok(Counts {
        preservations,
        contracts,
        users,
        judicial_requests: r.try_get(0)?,
        submissions_unpublished: r.try_get(1)?,
        oldest_unpublished_s: r.try_get(2)?,
        submissions_unsealed: r.try_get(3)?,
        webhooks_pending: r.try_get(4)?,
        webhooks_failed: r.try_get(5)?,
    })
}
