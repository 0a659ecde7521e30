//! `anchord relay gaps`: an outage view per target. It reports the windows
//! where anchoring was actually late — runs of final checkpoints that waited
//! longer than a threshold, from becoming final until a live anchor of their
//! own or a later live anchor covered them — not the ordinary coalescing of
//! checkpoints that a later anchor covered within the threshold. The open
//! window (final checkpoints nothing covers yet) is always reported, and so
//! is every anchor found lost (reorganised away, chain reset) and what
//! anchors its checkpoint now.

use anchord_ledger::{AnchorTimelineRow, Ledger, LedgerError};
use serde::Serialize;

/// Default lateness threshold of [`gaps`] (60 s).
pub const DEFAULT_LATE_AFTER_MS: u64 = 60_000;

/// A run of consecutive final checkpoints whose anchoring was late (or, for
/// the open window, has not happened yet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub first_size: u64,
    pub last_size: u64,
    pub checkpoints: u64,
    pub first_created_at_us: Option<i64>,
    pub last_created_at_us: Option<i64>,
    /// The longest wait in the window, from a checkpoint becoming final to
    /// the live anchor that anchors or covers it (for the open window: until
    /// now), in milliseconds.
    pub max_delay_ms: u64,
    /// Checkpoints in the window whose own anchor was lost.
    pub lost_anchors: u64,
    /// The anchor that ended the window (the live anchor of the window's
    /// last checkpoint, its own or a covering one), or `None` for the open
    /// window still waiting for an anchor.
    pub covered_by: Option<Covering>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Covering {
    pub size: u64,
    pub tx_id: String,
    pub block_number: u64,
    pub confirmed_at_us: i64,
}

/// A recorded anchor that is no longer on its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostAnchor {
    pub size: u64,
    pub tx_id: String,
    pub lost_at_us: i64,
    pub reason: String,
    /// What anchors the checkpoint now (its own new anchor or a later one
    /// covering it), or `None`: pending again.
    pub now_anchored_by: Option<Covering>,
}

/// The outage view of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GapReport {
    pub late_after_ms: u64,
    /// Late windows oldest first; the open window, if any, last.
    pub windows: Vec<Gap>,
    pub lost: Vec<LostAnchor>,
}

fn anchored_by(r: &AnchorTimelineRow) -> Option<Covering> {
    let own = r.own.as_ref().map(|(tx, block, at)| Covering {
        size: r.size,
        tx_id: tx.clone(),
        block_number: *block,
        confirmed_at_us: *at,
    });
    let cov = r.covered_by.as_ref().map(|(size, tx, block, at)| Covering {
        size: *size,
        tx_id: tx.clone(),
        block_number: *block,
        confirmed_at_us: *at,
    });
    // Whichever anchored it first.
    match (own, cov) {
        (Some(o), Some(c)) if c.confirmed_at_us < o.confirmed_at_us => Some(c),
        (Some(o), _) => Some(o),
        (None, c) => c,
    }
}

/// The outage view of `target` at `now_us`: windows of final checkpoints
/// that waited more than `late_after_ms` (0: every checkpoint without an
/// anchor of its own that a later anchor covered, i.e. all coalescing),
/// the open window, and the lost anchors.
pub async fn gaps(
    ledger: &Ledger,
    target: &str,
    late_after_ms: u64,
    now_us: i64,
) -> Result<GapReport, LedgerError> {
    let rows = ledger.anchor_timeline(target).await?;
    Ok(build(&rows, late_after_ms, now_us))
}

fn build(rows: &[AnchorTimelineRow], late_after_ms: u64, now_us: i64) -> GapReport {
    let mut windows: Vec<Gap> = Vec::new();
    let mut lost = Vec::new();
    // (open, gap) of the run being built.
    let mut run: Option<(bool, Gap)> = None;
    for r in rows {
        let by = anchored_by(r);
        for (tx, at, reason) in &r.lost {
            lost.push(LostAnchor {
                size: r.size,
                tx_id: tx.clone(),
                lost_at_us: *at,
                reason: reason.clone(),
                now_anchored_by: by.clone(),
            });
        }
        // Only final checkpoints are anchored; the others are not late.
        let Some(final_at) = r.final_at_us else {
            continue;
        };
        let (open, delay_us) = match &by {
            Some(c) => (false, c.confirmed_at_us - final_at),
            None => (true, now_us - final_at),
        };
        let delay_ms = (delay_us.max(0) / 1000) as u64;
        let late = open
            || if late_after_ms == 0 {
                r.own.is_none() || !r.lost.is_empty()
            } else {
                delay_ms > late_after_ms
            };
        if !late {
            if let Some((_, g)) = run.take() {
                windows.push(g);
            }
            continue;
        }
        let own_lost = u64::from(!r.lost.is_empty());
        if let Some((o, g)) = &mut run
            && *o == open
            && g.last_size + 1 == r.size
        {
            g.last_size = r.size;
            g.checkpoints += 1;
            g.last_created_at_us = Some(r.created_at_us);
            g.max_delay_ms = g.max_delay_ms.max(delay_ms);
            g.lost_anchors += own_lost;
            g.covered_by = by;
            continue;
        }
        if let Some((_, g)) = run.take() {
            windows.push(g);
        }
        run = Some((
            open,
            Gap {
                first_size: r.size,
                last_size: r.size,
                checkpoints: 1,
                first_created_at_us: Some(r.created_at_us),
                last_created_at_us: Some(r.created_at_us),
                max_delay_ms: delay_ms,
                lost_anchors: own_lost,
                covered_by: by,
            },
        ));
    }
    if let Some((_, g)) = run {
        windows.push(g);
    }
    GapReport {
        late_after_ms,
        windows,
        lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        size: u64,
        final_s: i64,
        own: Option<i64>,
        cov: Option<(u64, i64)>,
    ) -> AnchorTimelineRow {
        AnchorTimelineRow {
            size,
            created_at_us: final_s * 1_000_000,
            final_at_us: Some(final_s * 1_000_000),
            own: own.map(|at| (format!("tx{size}"), size, at * 1_000_000)),
            covered_by: cov.map(|(s, at)| (s, format!("tx{s}"), s, at * 1_000_000)),
            lost: Vec::new(),
        }
    }

    #[test]
    fn ordinary_coalescing_is_not_an_outage() {
        // 1 anchored itself; 2, 3 covered by 4 within a second; 5..7 waited
        // 100 s (an outage) and were covered by 8; 9 waits now.
        let rows = vec![
            row(1, 0, Some(1), None),
            row(2, 1, None, Some((4, 2))),
            row(3, 1, None, Some((4, 2))),
            row(4, 1, Some(2), None),
            row(5, 10, None, Some((8, 110))),
            row(6, 11, None, Some((8, 110))),
            row(7, 12, None, Some((8, 110))),
            row(8, 100, Some(110), None),
            row(9, 200, None, None),
        ];
        let r = build(&rows, 60_000, 201 * 1_000_000);
        assert_eq!(r.windows.len(), 2, "{r:?}");
        assert_eq!((r.windows[0].first_size, r.windows[0].last_size), (5, 7));
        assert_eq!(r.windows[0].max_delay_ms, 100_000);
        assert_eq!(r.windows[0].covered_by.as_ref().map(|c| c.size), Some(8));
        assert_eq!((r.windows[1].first_size, r.windows[1].last_size), (9, 9));
        assert!(r.windows[1].covered_by.is_none());
        // Threshold 0: every coalesced run, but never a checkpoint that has
        // an anchor of its own.
        let all = build(&rows, 0, 201 * 1_000_000);
        let runs: Vec<(u64, u64)> = all
            .windows
            .iter()
            .map(|g| (g.first_size, g.last_size))
            .collect();
        assert_eq!(runs, vec![(2, 3), (5, 7), (9, 9)]);
    }

    #[test]
    fn a_checkpoint_with_its_own_anchor_and_a_coverage_row_is_anchored() {
        // 5 was covered by 8 first, then its own (slow) anchor landed.
        let rows = vec![
            row(4, 0, None, Some((8, 1))),
            row(5, 0, Some(2), Some((8, 1))),
            row(6, 0, None, Some((8, 1))),
            row(8, 0, Some(1), None),
        ];
        let all = build(&rows, 0, 10_000_000);
        let runs: Vec<(u64, u64)> = all
            .windows
            .iter()
            .map(|g| (g.first_size, g.last_size))
            .collect();
        assert_eq!(runs, vec![(4, 4), (6, 6)]);
    }
}
