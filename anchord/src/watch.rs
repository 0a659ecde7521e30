//! `anchord status --watch`: a live view of the pipeline, read from the
//! ledger once per interval, so it works the same against `anchord run` on a
//! laptop or a scaled-out deployment: evidence per second at each stage
//! (sequenced, sealed, witnessed, anchored per target), block height, the
//! latest checkpoint and dead letters.
//!
//! On a terminal the view is redrawn in place; otherwise (a log, CI) one
//! line is printed per interval.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anchord_ledger::{Ledger, Summary};

#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Redraw the status every interval until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two reads of the ledger.
    #[arg(long, default_value_t = 1.0, requires = "watch")]
    pub interval: f64,
    /// Exit 0 once new evidence has arrived and stopped arriving, and all of
    /// it is sealed, covered by a final (witnessed) checkpoint and anchored
    /// on every target (used by scripts/demo).
    #[arg(long, requires = "watch")]
    pub until_anchored: bool,
    /// With --until-anchored: give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 300, requires = "until_anchored")]
    pub timeout: u64,
}

/// Per second, between two reads.
fn rate(now: u64, before: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        now.saturating_sub(before) as f64 / secs
    }
}

fn settled(start: &Summary, prev: &Summary, now: &Summary) -> bool {
    now.entries > start.entries
        && now.entries == prev.entries
        && now.sealed_entries == now.entries
        && now.checkpoint_size > 0
        && now.final_checkpoint_size == now.checkpoint_size
        && !now.targets.is_empty()
        && now
            .targets
            .iter()
            .all(|t| t.checkpoint_size == now.checkpoint_size)
}

/// The view, one line per item (shared by the terminal and plain output).
pub fn render(now: &Summary, prev: &Summary, secs: f64, elapsed: Duration) -> Vec<String> {
    let mut lines = vec![
        format!("anchord pipeline  t+{:>4}s", elapsed.as_secs()),
        format!(
            "  sequenced  {:>12} entries  {:>9.0}/s",
            now.entries,
            rate(now.entries, prev.entries, secs)
        ),
        format!(
            "  sealed     {:>12} entries  {:>9.0}/s   block height {}",
            now.sealed_entries,
            rate(now.sealed_entries, prev.sealed_entries, secs),
            now.blocks.saturating_sub(1)
        ),
        format!(
            "  witnessed  {:>12} entries  {:>9.0}/s   checkpoint {} (final {})",
            now.witnessed_entries,
            rate(now.witnessed_entries, prev.witnessed_entries, secs),
            now.checkpoint_size,
            now.final_checkpoint_size
        ),
    ];
    if now.targets.is_empty() {
        lines.push("  anchored   (no confirmed anchor yet)".into());
    }
    for t in &now.targets {
        let before = prev
            .targets
            .iter()
            .find(|p| p.target == t.target)
            .map_or(t.entries, |p| p.entries);
        lines.push(format!(
            "  anchored   {:>12} entries  {:>9.0}/s   {} checkpoint {} ({} anchors)",
            t.entries,
            rate(t.entries, before, secs),
            t.target,
            t.checkpoint_size,
            t.anchors
        ));
    }
    lines.push(format!(
        "  dead letters {:>10}  ({} not yet on the dead-letter topic)",
        now.dead_letters, now.dead_letters_unpublished
    ));
    lines
}

pub async fn watch(ledger: &Ledger, args: &WatchArgs) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(args.interval.max(0.1));
    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let start = ledger.summary().await?;
    let mut prev = start.clone();
    let mut prev_at = Instant::now();
    let mut drawn = 0usize;
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let now = match ledger.summary().await {
            Ok(s) => s,
            Err(e) => {
                // A restarting PostgreSQL is shown, not fatal.
                eprintln!("ledger unreachable: {e}");
                continue;
            }
        };
        let at = Instant::now();
        let lines = render(&now, &prev, (at - prev_at).as_secs_f64(), started.elapsed());
        let mut out = std::io::stdout().lock();
        if tty {
            if drawn > 0 {
                // Up `drawn` lines, clear to the end of the screen.
                write!(out, "\x1b[{drawn}A\x1b[J")?;
            }
            for l in &lines {
                writeln!(out, "{l}")?;
            }
            drawn = lines.len();
        } else {
            writeln!(out, "{}", lines.join(" |").replace("  ", " "))?;
        }
        out.flush()?;
        drop(out);
        if args.until_anchored {
            if settled(&start, &prev, &now) {
                return Ok(());
            }
            if at >= deadline {
                anyhow::bail!(
                    "not every entry was sealed, witnessed and anchored within {} s",
                    args.timeout
                );
            }
        }
        prev = now;
        prev_at = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchord_ledger::TargetHead;

    fn summary(entries: u64, sealed: u64, cp: u64, fin: u64, anchored: Option<u64>) -> Summary {
        Summary {
            entries,
            blocks: cp,
            sealed_entries: sealed,
            checkpoint_size: cp,
            final_checkpoint_size: fin,
            targets: anchored
                .map(|size| {
                    vec![TargetHead {
                        target: "court-sim".into(),
                        anchors: size,
                        checkpoint_size: size,
                        entries: sealed,
                    }]
                })
                .unwrap_or_default(),
            ..Summary::default()
        }
    }

    #[test]
    fn settles_only_when_everything_is_anchored_and_input_stopped() {
        let start = summary(10, 10, 1, 1, Some(1));
        let done = summary(50, 50, 3, 3, Some(3));
        assert!(settled(&start, &done, &done));
        // Still arriving.
        assert!(!settled(&start, &summary(40, 40, 3, 3, Some(3)), &done));
        // Nothing new since the start.
        assert!(!settled(&done, &done, &done));
        // Not sealed, not final, not anchored.
        let unsealed = summary(50, 45, 3, 3, Some(3));
        assert!(!settled(&start, &unsealed, &unsealed));
        let unwitnessed = summary(50, 50, 3, 2, Some(3));
        assert!(!settled(&start, &unwitnessed, &unwitnessed));
        let unanchored = summary(50, 50, 3, 3, Some(2));
        assert!(!settled(&start, &unanchored, &unanchored));
        let no_target = summary(50, 50, 3, 3, None);
        assert!(!settled(&start, &no_target, &no_target));
    }

    #[test]
    fn renders_rates_per_stage_and_target() {
        let prev = summary(1000, 900, 2, 2, Some(2));
        let now = summary(6000, 5900, 4, 3, Some(3));
        let text = render(&now, &prev, 1.0, Duration::from_secs(7)).join("\n");
        assert!(text.contains("t+   7s"), "{text}");
        assert!(text.contains("6000 entries       5000/s"), "{text}");
        assert!(text.contains("block height 3"), "{text}");
        assert!(text.contains("checkpoint 4 (final 3)"), "{text}");
        assert!(text.contains("court-sim checkpoint 3"), "{text}");
        assert!(text.contains("dead letters"), "{text}");
    }
}
