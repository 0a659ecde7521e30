//! The workflow's background loops, owned by the service (issue 15).
//!
//! The evidence publisher, audit anchoring, webhook delivery, file
//! collection and limits housekeeping run in one [`JoinSet`] under the
//! service's stop token. They run until the service stops; one that stops
//! unasked (returns while nobody asked it to, or panics) is a failure of the
//! whole service: its [`Health`] flag goes down (readiness fails, the
//! `anchord_workflow_task_up{task}` gauge drops to 0), the other loops and
//! the HTTP server are stopped and drained, and the service's future
//! resolves with [`WorkflowError::Task`](crate::WorkflowError::Task), which
//! `anchord workflow` turns into a non-zero exit. Before this, a panic in
//! the evidence publisher silently stopped approved evidence from reaching
//! the ledger while `/readyz` stayed green.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// The loops' names (the `task` label of `anchord_workflow_task_up`; the
/// list lives with the metric, which exports every label at registration).
pub const TASK_NAMES: [&str; 7] = crate::metrics::TASKS;
/// Publishes approved evidence to the evidence topic and links it back.
pub const EVIDENCE_PUBLISHER: &str = TASK_NAMES[0];
/// Anchors the audit chain's head periodically.
pub const AUDIT_ANCHORING: &str = TASK_NAMES[1];
/// Delivers webhook notifications.
pub const WEBHOOK_DELIVERY: &str = TASK_NAMES[2];
/// Collects unreferenced stored files.
pub const FILE_GC: &str = TASK_NAMES[3];
/// Session purge, limiter upkeep, anonymous-noise summaries.
pub const HOUSEKEEPING: &str = TASK_NAMES[4];
/// Scrapes the service instances the monitoring page shows.
pub const INSTANCE_SCRAPER: &str = TASK_NAMES[5];
/// Sends the notification e-mail outbox (`mailer.rs`).
pub const MAILER: &str = TASK_NAMES[6];

/// How long loops get to finish after the stop before they are aborted.
const DRAIN: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Up,
    /// Stopped because the service was asked to stop.
    Stopped,
    /// Stopped unasked: returned or panicked.
    Failed(String),
}

/// The loops' states, shared with readiness (`anchord workflow`'s
/// `/readyz`). Cheap to clone; one per service instance.
#[derive(Debug, Clone, Default)]
pub struct Health {
    tasks: Arc<Mutex<HashMap<&'static str, State>>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&self, task: &'static str, state: State) {
        let up = matches!(state, State::Up);
        crate::metrics::TASK_UP
            .with_label_values(&[task])
            .set(i64::from(up));
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(task, state);
    }

    /// `Ok` while every background loop runs; otherwise why not, naming
    /// each loop that is not running (a failed one with its reason).
    pub fn check(&self) -> Result<(), String> {
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tasks.is_empty() {
            return Err("workflow background tasks not started".into());
        }
        let mut bad: Vec<String> = tasks
            .iter()
            .filter_map(|(name, s)| match s {
                State::Up => None,
                State::Stopped => Some(format!("{name} stopped")),
                State::Failed(why) => Some(format!("{name} failed: {why}")),
            })
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        bad.sort();
        Err(bad.join("; "))
    }

    /// The loop `task` failed (`None` while it runs or stopped when asked).
    pub fn failure(&self, task: &str) -> Option<String> {
        match self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(task)
        {
            Some(State::Failed(why)) => Some(why.clone()),
            _ => None,
        }
    }
}

/// The loops of one service instance.
pub(crate) struct Tasks {
    set: JoinSet<()>,
    names: HashMap<Id, &'static str>,
    health: Health,
    stop: CancellationToken,
}

impl Tasks {
    /// Loops stopped by `stop` (cancelled on the service's stop, or by
    /// [`Tasks::supervise`] when one fails).
    pub(crate) fn new(health: Health, stop: CancellationToken) -> Self {
        Tasks {
            set: JoinSet::new(),
            names: HashMap::new(),
            health,
            stop,
        }
    }

    /// Start `fut` as the loop `name`, one unit of the one-connection rule.
    pub(crate) fn spawn<F>(&mut self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.health.set(name, State::Up);
        let h = self.set.spawn(crate::conn::scope(fut));
        self.names.insert(h.id(), name);
    }

    /// Wait until every loop has ended. The first that ends while `stop`
    /// is not cancelled is a failure: its flag goes down, `stop` is
    /// cancelled (the server and the other loops drain) and its error is
    /// returned once the rest have ended (or been aborted after
    /// [`DRAIN`]).
    pub(crate) async fn supervise(mut self) -> Result<(), crate::WorkflowError> {
        let mut first: Option<crate::WorkflowError> = None;
        loop {
            let next = if self.stop.is_cancelled() {
                match tokio::time::timeout(DRAIN, self.set.join_next_with_id()).await {
                    Ok(n) => n,
                    Err(_) => {
                        tracing::error!(
                            "workflow background tasks did not stop within {DRAIN:?}; aborting them"
                        );
                        self.set.abort_all();
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    n = self.set.join_next_with_id() => n,
                    _ = self.stop.cancelled() => continue,
                }
            };
            let Some(joined) = next else { break };
            let (id, outcome) = match joined {
                Ok((id, ())) => (id, None),
                Err(e) if e.is_cancelled() => (e.id(), Some("aborted".to_owned())),
                Err(e) => {
                    let id = e.id();
                    let why = match e.try_into_panic() {
                        Ok(p) => panic_text(p.as_ref()),
                        Err(e) => e.to_string(),
                    };
                    (id, Some(format!("panicked: {why}")))
                }
            };
            let name = self.names.remove(&id).unwrap_or("unknown");
            let asked = self.stop.is_cancelled();
            match outcome {
                None if asked => self.health.set(name, State::Stopped),
                None => self.fail(name, "stopped unasked".into(), &mut first),
                Some(why) => self.fail(name, why, &mut first),
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn fail(&self, name: &'static str, why: String, first: &mut Option<crate::WorkflowError>) {
        tracing::error!(task = name, reason = %why, "workflow background task failed; stopping the service");
        self.health.set(name, State::Failed(why.clone()));
        self.stop.cancel();
        first.get_or_insert(crate::WorkflowError::Task {
            task: name,
            reason: why,
        });
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_loop_stops_the_others_and_reports_its_panic() {
        let health = Health::new();
        let stop = CancellationToken::new();
        let mut tasks = Tasks::new(health.clone(), stop.clone());
        let s = stop.clone();
        tasks.spawn(WEBHOOK_DELIVERY, async move { s.cancelled().await });
        tasks.spawn(EVIDENCE_PUBLISHER, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("boom in the publisher");
        });
        assert_eq!(health.check(), Ok(()));
        let r = tasks.supervise().await;
        assert!(stop.is_cancelled(), "the service's stop is triggered");
        match r {
            Err(crate::WorkflowError::Task { task, reason }) => {
                assert_eq!(task, EVIDENCE_PUBLISHER);
                assert!(reason.contains("boom in the publisher"), "{reason}");
            }
            other => panic!("expected a task error, got {other:?}"),
        }
        let why = health.check().unwrap_err();
        assert!(why.contains("evidence_publisher failed"), "{why}");
        assert!(why.contains("webhook_delivery stopped"), "{why}");
    }

    #[tokio::test]
    async fn a_loop_returning_unasked_is_a_failure() {
        let health = Health::new();
        let stop = CancellationToken::new();
        let mut tasks = Tasks::new(health.clone(), stop.clone());
        tasks.spawn(FILE_GC, async {});
        let r = tasks.supervise().await;
        assert!(matches!(
            r,
            Err(crate::WorkflowError::Task { task: FILE_GC, .. })
        ));
        assert_eq!(health.failure(FILE_GC).as_deref(), Some("stopped unasked"));
    }

    #[tokio::test]
    async fn loops_stopped_when_asked_end_cleanly() {
        let health = Health::new();
        let stop = CancellationToken::new();
        let mut tasks = Tasks::new(health.clone(), stop.clone());
        for name in TASK_NAMES {
            let s = stop.clone();
            tasks.spawn(name, async move { s.cancelled().await });
        }
        assert_eq!(health.check(), Ok(()));
        stop.cancel();
        assert!(tasks.supervise().await.is_ok());
        assert!(health.check().is_err(), "stopped loops are not ready");
        assert_eq!(health.failure(FILE_GC), None);
    }
}
