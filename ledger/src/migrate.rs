//! Versioned, checksummed migrations.
//!
//! Why not `refinery` or `sqlx migrate`: we need two things they do not give
//! together with `deadpool-postgres` — a cluster-wide advisory lock so that
//! several replicas starting at once (a Kubernetes rollout) apply each
//! migration exactly once, and a refusal to start when an applied migration's
//! text has changed. That is forty lines here.

use crate::LedgerError;

/// One schema change, applied once, in version order, in its own transaction.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only: never edit a released one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "batcher",
        sql: include_str!("../migrations/0002_batcher.sql"),
    },
    Migration {
        version: 3,
        name: "relay",
        sql: include_str!("../migrations/0003_relay.sql"),
    },
    Migration {
        version: 4,
        name: "evidence_hash_index",
        sql: include_str!("../migrations/0004_evidence_hash_index.sql"),
    },
];

/// Advisory lock key: "anchord migrate" folded into an i64.
const LOCK_KEY: i64 = 0x616e_6368_6d69_6772;

pub(crate) async fn run(
    c: &mut deadpool_postgres::Object,
) -> Result<Vec<&'static Migration>, LedgerError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_pending(c).await;
    // Unlock even after a failure; the session may be pooled.
    let unlock = c
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply_pending(
    c: &mut deadpool_postgres::Object,
) -> Result<Vec<&'static Migration>, LedgerError> {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let rows = c
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?;
    let applied: std::collections::HashMap<i32, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if let Some(max) = applied.keys().max()
        && *max > MIGRATIONS.last().map_or(0, |m| m.version)
    {
        return Err(LedgerError::Migration {
            version: *max,
            name: "?",
            reason: "the database is newer than this binary; upgrade anchord".into(),
        });
    }
    let mut done = Vec::new();
    for m in MIGRATIONS {
        let sum = checksum(m.sql);
        match applied.get(&m.version) {
            Some(stored) if *stored == sum => continue,
            Some(stored) => {
                return Err(LedgerError::Migration {
                    version: m.version,
                    name: m.name,
                    reason: format!(
                        "its text changed after it was applied (stored checksum {stored}, now {sum})"
                    ),
                });
            }
            None => {}
        }
        let tx = c.transaction().await?;
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| LedgerError::Migration {
                version: m.version,
                name: m.name,
                reason: e.to_string(),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &sum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        done.push(m);
    }
    Ok(done)
}

/// Hex SHA-256 of the migration text, through the core crate (the one place
/// hashing is defined).
fn checksum(sql: &str) -> String {
    hex::encode(anchord_core::HashSuite::Sha256.digest(sql.as_bytes()))
}
