//! Times as Anchord records them: whole microseconds (or milliseconds, for
//! the judicial gateway and the Kafka message) since the Unix epoch, UTC, as
//! `i64`. This is their one definition; every stage turns a clock reading
//! into one through it.
//!
//! Core reads no clock: callers pass the time in, e.g.
//! `unix_micros(SystemTime::now())`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch; 0 for a time before it, `i64::MAX`
/// for one too far after it to count in an `i64`.
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch; 0 before it, saturating like
/// [`unix_micros`].
pub fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_answers() {
        // 2025-11-24T16:00:00.123456Z.
        let t = UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456);
        assert_eq!(unix_micros(t), 1_764_000_000_123_456);
        assert_eq!(unix_millis(t), 1_764_000_000_123);
        assert_eq!(unix_micros(UNIX_EPOCH), 0);
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_nanos(999_999)), 0);
    }

    #[test]
    fn before_the_epoch_is_zero_and_far_future_saturates() {
        assert_eq!(unix_micros(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 2)) {
            assert_eq!(unix_micros(far), i64::MAX);
            assert_eq!(unix_millis(far), i64::MAX);
        }
    }
}
