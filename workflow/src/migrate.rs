//! The `workflow` schema's versioned, checksummed migrations: the ledger's
//! approach (`ledger/src/migrate.rs`) with its own advisory lock key and its
//! own `workflow.schema_migrations` table, so the two schemas evolve apart.

use crate::WorkflowError;

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
        name: "sealed_platform_seeds",
        sql: include_str!("../migrations/0002_sealed_platform_seeds.sql"),
    },
];

/// Advisory lock key: "anchwkfl" folded into an i64 (the ledger's is
/// "anchmigr").
pub const LOCK_KEY: i64 = 0x616e_6368_776b_666c;

/// Apply pending migrations under the advisory lock; returns the versions
/// applied.
pub async fn run(c: &mut deadpool_postgres::Object) -> Result<Vec<i32>, WorkflowError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_pending(c).await;
    let unlock = c
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply_pending(c: &mut deadpool_postgres::Object) -> Result<Vec<i32>, WorkflowError> {
    c.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS workflow;
         CREATE TABLE IF NOT EXISTS workflow.schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let rows = c
        .query(
            "SELECT version, checksum FROM workflow.schema_migrations",
            &[],
        )
        .await?;
    let applied: std::collections::HashMap<i32, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if let Some(max) = applied.keys().max()
        && *max > MIGRATIONS.last().map_or(0, |m| m.version)
    {
        return Err(WorkflowError::Db(format!(
            "workflow schema version {max} is newer than this binary; upgrade anchord"
        )));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS {
        let sum = checksum(m.sql);
        match applied.get(&m.version) {
            Some(stored) if *stored == sum => continue,
            Some(stored) => {
                return Err(WorkflowError::Db(format!(
                    "workflow migration {} ({}): its text changed after it was applied (stored checksum {stored}, now {sum})",
                    m.version, m.name
                )));
            }
            None => {}
        }
        let tx = c.transaction().await?;
        tx.batch_execute(m.sql).await.map_err(|e| {
            WorkflowError::Db(format!(
                "workflow migration {} ({}): {e}",
                m.version, m.name
            ))
        })?;
        tx.execute(
            "INSERT INTO workflow.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &sum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied workflow migration"
        );
        done.push(m.version);
    }
    Ok(done)
}

/// Hex SHA-256 of the migration text.
pub fn checksum(sql: &str) -> String {
    hex::encode(crate::sha256(sql.as_bytes()))
}
