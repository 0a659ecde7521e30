//! Events of the workflow (a preservation approved, a contract signed, a
//! record sealed on chain, ...) as the narrow interface through which
//! features notify subscribers: [`emit`] queues one webhook delivery per
//! subscribed webhook in the caller's transaction; `webhooks.rs` delivers
//! them and serves the webhook endpoints. Features depend on this module,
//! never on `webhooks.rs` (so evidence does not reach the webhooks' HTTP
//! layer and its role extractors).

use crate::error::ApiError;
use crate::ts;

/// Queue `event` for every enabled webhook of `tenant` and every
/// platform-wide one, in the caller's transaction.
pub async fn emit(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Option<&str>,
    event: &str,
    object: serde_json::Value,
) -> Result<(), ApiError> {
    let hooks = tx
        .query(
            "SELECT id FROM workflow.webhooks
              WHERE deleted_at IS NULL AND disabled_at IS NULL AND (tenant IS NULL OR tenant = $1)",
            &[&tenant],
        )
        .await?;
    for h in hooks {
        let webhook_id: i64 = h.get(0);
        let delivery_id = hex::encode(&crate::random32()[..16]);
        let body = serde_json::json!({
            "delivery_id": delivery_id,
            "event": event,
            "tenant": tenant,
            "occurred_at": ts(time::OffsetDateTime::now_utc()),
            "object": object,
        })
        .to_string();
        tx.execute(
            "INSERT INTO workflow.webhook_deliveries (delivery_id, webhook_id, event, body)
             VALUES ($1, $2, $3, $4)",
            &[&delivery_id, &webhook_id, &event, &body],
        )
        .await?;
    }
    Ok(())
}
