//! Time stamps and uuids in the exact textual forms FreeSWITCH uses.
//!
//! FreeSWITCH stamps every event three ways (`Event-Date-Local`,
//! `Event-Date-GMT`, `Event-Date-Timestamp` in microseconds). The simulated
//! box runs in UTC, as the captured one did, so "local" equals GMT. Written
//! by hand to keep the crate free of a calendar dependency.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    weekday: usize,
}

fn civil(us: i64) -> Civil {
    let secs = us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: usize::try_from(month - 1).unwrap_or(0),
        day,
        hour: rem / 3600,
        min: rem % 3600 / 60,
        sec: rem % 60,
        weekday: usize::try_from(days.rem_euclid(7)).unwrap_or(0),
    }
}

/// `2026-11-26 11:17:04` (`Event-Date-Local`, `*_stamp` variables).
pub fn local(us: i64) -> String {
    let c = civil(us);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year,
        c.month + 1,
        c.day,
        c.hour,
        c.min,
        c.sec
    )
}

/// `Thu, 26 Nov 2026 11:17:04 GMT` (`Event-Date-GMT`).
pub fn gmt(us: i64) -> String {
    format!("{} GMT", rfc822_head(us))
}

/// `Thu, 26 Nov 2026 11:17:04 +0000` (the dialplan's `RFC2822_DATE`).
pub fn rfc2822(us: i64) -> String {
    format!("{} +0000", rfc822_head(us))
}

fn rfc822_head(us: i64) -> String {
    let c = civil(us);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02}",
        DAYS[c.weekday], c.day, MONTHS[c.month], c.year, c.hour, c.min, c.sec
    )
}

/// `2026-11-26-11-17-04` (the dialplan's recording file stamp).
pub fn dashed(us: i64) -> String {
    local(us).replace([' ', ':'], "-")
}

/// Whole seconds of a microsecond stamp.
pub fn secs(us: i64) -> i64 {
    us.div_euclid(1_000_000)
}

/// A random (version 4) uuid in FreeSWITCH's lowercase hyphenated form.
pub fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_capture() {
        // Event-Date-Timestamp 1795691824251852 from capture 02.
        let us = 1_795_691_824_251_852;
        assert_eq!(local(us), "2026-11-26 11:17:04");
        assert_eq!(gmt(us), "Thu, 26 Nov 2026 11:17:04 GMT");
        assert_eq!(rfc2822(us), "Thu, 26 Nov 2026 11:17:04 +0000");
        assert_eq!(dashed(us), "2026-11-26-11-17-04");
        assert_eq!(local(0), "1970-01-01 00:00:00");
        assert_eq!(gmt(951_782_400_000_000), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn uuid_shape() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid());
    }
}
