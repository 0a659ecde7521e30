//! The dead-letter limit (Arroyo's `DlqLimit`): a misconfiguration that would
//! dead-letter everything (a wrong tenant list, a missing algorithm) must
//! stop ingest loudly instead of quietly emptying the topic into the DLQ.

use std::collections::VecDeque;

/// Rejection ratio over a sliding window of messages, plus a run length.
#[derive(Debug)]
pub struct DeadLetterLimit {
    max_ratio: f64,
    window: usize,
    max_consecutive: usize,
    recent: VecDeque<bool>,
    rejected_in_window: usize,
    consecutive: usize,
}

impl DeadLetterLimit {
    pub fn new(max_ratio: f64, window: usize, max_consecutive: usize) -> Self {
        DeadLetterLimit {
            max_ratio,
            window: window.max(1),
            max_consecutive,
            recent: VecDeque::with_capacity(window.max(1)),
            rejected_in_window: 0,
            consecutive: 0,
        }
    }

    /// Record one message; `Err` names the limit that was exceeded.
    pub fn record(&mut self, rejected: bool) -> Result<(), String> {
        if self.recent.len() == self.window && self.recent.pop_front() == Some(true) {
            self.rejected_in_window -= 1;
        }
        self.recent.push_back(rejected);
        if rejected {
            self.rejected_in_window += 1;
            self.consecutive += 1;
        } else {
            self.consecutive = 0;
        }
        if self.max_consecutive > 0 && self.consecutive >= self.max_consecutive {
            return Err(format!(
                "ingest.dead_letter_max_consecutive: {} messages in a row were rejected \
                 (limit {}); is ingest.tenants or ingest.accepted_algs wrong?",
                self.consecutive, self.max_consecutive
            ));
        }
        if self.recent.len() == self.window {
            let ratio = self.rejected_in_window as f64 / self.window as f64;
            if ratio > self.max_ratio {
                return Err(format!(
                    "ingest.dead_letter_max_ratio: {} of the last {} messages were rejected \
                     ({:.1}% > {:.1}%); is ingest.tenants or ingest.accepted_algs wrong?",
                    self.rejected_in_window,
                    self.window,
                    ratio * 100.0,
                    self.max_ratio * 100.0
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_checked_over_a_full_window() {
        let mut l = DeadLetterLimit::new(0.5, 10, 0);
        for _ in 0..5 {
            l.record(true).unwrap();
        }
        for _ in 0..5 {
            l.record(false).unwrap();
        }
        // Sliding: each new rejection pushes out an old one.
        for _ in 0..5 {
            l.record(true).unwrap();
        }
        let err = l.record(true).unwrap_err();
        assert!(err.contains("ingest.dead_letter_max_ratio"), "{err}");
    }

    #[test]
    fn a_run_of_rejections_trips_before_the_window_fills() {
        let mut l = DeadLetterLimit::new(1.0, 1000, 3);
        l.record(true).unwrap();
        l.record(true).unwrap();
        l.record(false).unwrap();
        l.record(true).unwrap();
        l.record(true).unwrap();
        let err = l.record(true).unwrap_err();
        assert!(err.contains("ingest.dead_letter_max_consecutive"), "{err}");
    }

    #[test]
    fn ratio_one_never_trips() {
        let mut l = DeadLetterLimit::new(1.0, 3, 0);
        for _ in 0..100 {
            l.record(true).unwrap();
        }
    }
}
