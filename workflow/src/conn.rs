//! One pool connection at a time per request (and per background task).
//!
//! The workflow API shares one PostgreSQL pool with the ledger reader. A
//! handler that holds a connection and then asks for a second one (a nested
//! acquire: "insert, then load", "read the record, then the ledger")
//! deadlocks the pool as soon as as many such requests run at once as the
//! pool has connections: every one holds one connection and waits for
//! another until the pool's wait timeout (issue 12, flaw 1).
//!
//! The rule is therefore: **no request or background task ever holds two
//! pool connections**; a helper that needs the database takes the
//! caller's connection (or transaction) as an argument.
//!
//! This module enforces it. Every request runs inside [`scope`] (the
//! outermost layer of the router), and so does every background task; the
//! workflow's connections come only from [`get`], which counts the
//! connections the current task holds. A second acquire while one is held
//! is a bug: under `debug_assertions` (every test build) it panics with the
//! call site, so the test that drives the path fails loudly; in release
//! builds it is logged as an error (and counted) and allowed, which is never
//! worse than before. Code that calls the ledger or the prover (which take
//! their own connection from the same pool) asserts first that it holds
//! none ([`none_held`]).

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use deadpool_postgres::{Object, Pool, PoolError};

tokio::task_local! {
    /// Connections the current request or background task holds.
    static HELD: Cell<u32>;
}

/// Run `fut` as one unit of the one-connection rule (a request, a
/// background task).
pub(crate) async fn scope<F: std::future::Future>(fut: F) -> F::Output {
    HELD.scope(Cell::new(0), fut).await
}

/// How many connections the current task holds (0 outside a scope).
pub(crate) fn held() -> u32 {
    HELD.try_with(Cell::get).unwrap_or(0)
}

#[track_caller]
fn violation(what: &str) {
    let at = std::panic::Location::caller();
    if cfg!(debug_assertions) {
        panic!(
            "nested pool acquire at {at}: {what} while this request already holds a pool connection (workflow/src/conn.rs)"
        );
    }
    tracing::error!(%at, what, "nested pool acquire: a request holds two pool connections");
}

/// Assert that the current task holds no pool connection before code that
/// takes one of its own (the ledger, the prover).
#[track_caller]
pub(crate) fn none_held(what: &str) {
    if held() > 0 {
        violation(what);
    }
}

/// A pooled connection counted against the current task.
pub struct Conn {
    obj: Object,
    counted: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// Take a connection from `pool` (the only way workflow code does).
#[track_caller]
pub(crate) fn get(pool: &Pool) -> impl std::future::Future<Output = Result<Conn, PoolError>> {
    // Checked before waiting: a nested acquire must fail here, not hang.
    none_held("taking a second connection");
    async move {
        let obj = pool.get().await?;
        let counted = HELD.try_with(|h| h.set(h.get().saturating_add(1))).is_ok();
        Ok(Conn { obj, counted })
    }
}

impl Conn {
    /// The client, for code generic over clients and transactions (the
    /// store layer).
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.obj
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.counted {
            let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(1)));
        }
    }
}

impl Deref for Conn {
    type Target = Object;
    fn deref(&self) -> &Object {
        &self.obj
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        &mut self.obj
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_count_follows_scopes() {
        assert_eq!(held(), 0);
        scope(async {
            assert_eq!(held(), 0);
            HELD.with(|h| h.set(1));
            assert_eq!(held(), 1);
            // A nested scope (a spawned background unit) starts at zero.
            scope(async { assert_eq!(held(), 0) }).await;
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "nested pool acquire")]
    async fn a_second_acquire_panics_in_test_builds() {
        scope(async {
            HELD.with(|h| h.set(1));
            none_held("the ledger");
        })
        .await;
    }
}
