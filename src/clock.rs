//! Time as the manifest and the lock spell it: RFC 3339 in UTC, whole seconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// "3 min ago", "2 h 5 min ago", for a lock holder's age.
pub fn age(since: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - since).whole_seconds().max(0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_age() {
        let t = parse("2026-11-20T10:04:11Z").expect("parse");
        assert_eq!(rfc3339(t), "2026-11-20T10:04:11Z");
        let later = t + time::Duration::seconds(3725);
        assert_eq!(age(t, later), "1 h 2 min");
        assert_eq!(age(t, t + time::Duration::seconds(75)), "1 min 15 s");
        assert_eq!(age(later, t), "0 s");
    }
}
