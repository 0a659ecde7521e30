//! Times as a person reads them: RFC 3339 in UTC, and in the deployment's
//! time zone (`TZ`, else `/etc/localtime`) when that is not UTC. Machine
//! output (`--json`) keeps the µs-since-the-epoch values as they are.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// RFC 3339 in UTC with microseconds when there are any:
/// `2025-11-24T16:00:00.123456Z`.
pub fn rfc3339_utc(us: i64) -> Option<String> {
    let ts = Timestamp::from_microsecond(us).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}

/// RFC 3339 with the offset of `tz` (`2025-11-25T00:00:00+08:00`).
pub fn rfc3339_in(us: i64, tz: &TimeZone) -> Option<String> {
    let ts = Timestamp::from_microsecond(us).ok()?;
    Some(
        ts.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
            .to_string(),
    )
}

/// The deployment's zone: `TZ`, else the system's; UTC when neither
/// resolves (jiff logs why).
pub fn local_zone() -> TimeZone {
    TimeZone::system()
}

/// `UTC (local zone)`, e.g. `2025-11-24T16:00:00Z (2025-11-25T00:00:00+08:00
/// Asia/Shanghai)`; only the UTC form when the local zone is UTC. A value
/// outside the representable range is shown as it is, in µs.
pub fn human(us: i64) -> String {
    human_in(us, &local_zone())
}

/// [`human`] in an explicit zone.
pub fn human_in(us: i64, tz: &TimeZone) -> String {
    let Some(utc) = rfc3339_utc(us) else {
        return format!("{us} µs since the epoch");
    };
    let name = tz.iana_name().unwrap_or("local time");
    let is_utc = matches!(
        name,
        "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Zulu" | "Etc/Zulu"
    ) || (tz.iana_name().is_none() && *tz == TimeZone::UTC);
    match rfc3339_in(us, tz) {
        Some(local) if !is_utc => format!("{utc} ({local} {name})"),
        _ => utc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_a_named_zone_in_rfc3339() {
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        // 2025-11-24T16:00:00Z
        let us = 1_764_000_000_000_000;
        assert_eq!(rfc3339_utc(us).unwrap(), "2025-11-24T16:00:00Z");
        assert_eq!(
            human_in(us, &shanghai),
            "2025-11-24T16:00:00Z (2025-11-25T00:00:00+08:00 Asia/Shanghai)"
        );
        assert_eq!(
            human_in(us + 123_456, &TimeZone::UTC),
            "2025-11-24T16:00:00.123456Z"
        );
        // Out of range: the raw value, never a panic.
        assert_eq!(
            human_in(i64::MAX, &shanghai),
            format!("{} µs since the epoch", i64::MAX)
        );
        // Before the epoch is still a time.
        assert_eq!(rfc3339_utc(-1_000_000).unwrap(), "1969-12-31T23:59:59Z");
    }
}
