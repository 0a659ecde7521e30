//! Events of the workflow (a preservation approved, a contract signed, a
//! record sealed on chain, ...) as the narrow interface through which
//! features notify subscribers: [`emit`] queues one webhook delivery per
//! subscribed webhook, and the e-mails the event sends to the people it
//! concerns (`store/notify.rs`, delivered by `mailer.rs`), in the caller's
//! transaction; `webhooks.rs` delivers
//! them and serves the webhook endpoints. Features depend on this module,
//! never on `webhooks.rs` (so evidence does not reach the webhooks' HTTP
//! layer and its role extractors).

use crate::error::ApiError;
use crate::store::webhooks;
use crate::ts;

/// Queue `event` for every enabled webhook of `tenant` and every
/// platform-wide one, in the caller's transaction.
pub async fn emit(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Option<&str>,
    event: &str,
    object: serde_json::Value,
) -> Result<(), ApiError> {
    for webhook_id in webhooks::subscribers(tx, tenant).await? {
        let delivery_id = hex::encode(&crate::random32()[..16]);
        let body = serde_json::json!({
            "delivery_id": delivery_id,
            "event": event,
            "tenant": tenant,
            "occurred_at": ts(time::OffsetDateTime::now_utc()),
            "object": object,
        })
        .to_string();
        webhooks::queue(tx, &delivery_id, webhook_id, event, &body).await?;
    }
    // The e-mails the event sends (`notify.rs`), in the same transaction.
    crate::store::notify::queue(tx, event, &object).await?;
    Ok(())
}
