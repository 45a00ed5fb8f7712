//! `status`: load, limits, version and uptime.
//!
//! mod_commands prints (v1.10.12, checked against captures 01 and 10):
//!
//! ```text
//! UP 0 years, 0 days, 0 hours, 9 minutes, 20 seconds, 801 milliseconds, 882 microseconds
//! FreeSWITCH (Version 1.10.12-release  64bit) is ready
//! 44 session(s) since startup
//! 4 session(s) - peak 5, last 5min 4
//! 0 session(s) per Sec out of max 30, peak 4, last 5min 4
//! 1000 session(s) max
//! min idle cpu 0.00/49.53
//! Current Stack Size/Max 240K/8192K
//! ```
//!
//! Traps: in `N session(s) per Sec out of max M` N is the last second's
//! rate and M the configured limit; in `min idle cpu A/B` A is the
//! configured floor and B the idle CPU now. Two lines end with a space.
//! Units are singular for 1 (`1 minute`).

use super::{CoreStatus, ListingError, check_api_error};

const WHAT: &str = "status";

/// Parses an `api version` body (`FreeSWITCH Version 1.10.12-release~64bit
/// ( 64bit)`) into the version as HEARTBEAT spells it. `status` prints the
/// same version with `~` turned into a space, so the agent prefers this one.
pub fn parse_version(body: &str) -> Result<String, ListingError> {
    let body = check_api_error(body)?;
    let mut words = body.split_whitespace();
    words
        .by_ref()
        .find(|w| *w == "Version")
        .and_then(|_| words.next())
        .map(str::to_owned)
        .ok_or_else(|| ListingError::Malformed {
            what: "version",
            detail: body.chars().take(80).collect(),
        })
}

/// Parses an `api status` body.
pub fn parse_status(body: &str) -> Result<CoreStatus, ListingError> {
    let body = check_api_error(body)?;
    let mut st = CoreStatus::default();
    let (mut sessions, mut max, mut sps, mut cpu, mut version) =
        (false, false, false, false, false);
    for line in body.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("UP ") {
            st.uptime_ms = uptime_ms(rest)?;
        } else if let Some(rest) = line.strip_prefix("FreeSWITCH (Version ") {
            let (ver, state) = rest
                .split_once(") is ")
                .ok_or_else(|| ListingError::malformed(WHAT, "version line"))?;
            st.version = ver.trim().to_owned();
            st.ready = state == "ready";
            version = true;
        } else if let Some((n, rest)) = line.split_once(" session(s) per Sec out of max ") {
            st.sps = number(n)?;
            st.max_sps = number(rest.split(',').next().unwrap_or_default())?;
            sps = true;
        } else if let Some((n, _)) = line.split_once(" session(s) - peak ") {
            st.sessions = number(n)?;
            sessions = true;
        } else if let Some(n) = line.strip_suffix(" session(s) max") {
            st.max_sessions = number(n)?;
            max = true;
        } else if let Some(rest) = line.strip_prefix("min idle cpu ") {
            let now = rest
                .split_once('/')
                .map(|(_, now)| now)
                .ok_or_else(|| ListingError::malformed(WHAT, "idle cpu line"))?;
            st.idle_cpu = now
                .trim()
                .parse()
                .map_err(|_| ListingError::malformed(WHAT, format!("idle cpu {now:?}")))?;
            cpu = true;
        }
    }
    if !(sessions && max && sps && cpu && version) {
        return Err(ListingError::malformed(WHAT, "missing lines"));
    }
    Ok(st)
}

fn number(s: &str) -> Result<u32, ListingError> {
    s.trim()
        .parse()
        .map_err(|_| ListingError::malformed(WHAT, format!("number {s:?}")))
}

/// `0 years, 0 days, 0 hours, 3 minutes, 22 seconds, 542 milliseconds, 323 microseconds`
fn uptime_ms(text: &str) -> Result<u64, ListingError> {
    let mut ms: u64 = 0;
    for part in text.split(',') {
        let (n, unit) = part
            .trim()
            .split_once(' ')
            .ok_or_else(|| ListingError::malformed(WHAT, format!("uptime part {part:?}")))?;
        let n: u64 = n
            .parse()
            .map_err(|_| ListingError::malformed(WHAT, format!("uptime part {part:?}")))?;
        // FreeSWITCH's year is 365 days (switch_core_measure_time).
        let scale = match unit.trim_end_matches('s') {
            "year" => 365 * 86_400_000,
            "day" => 86_400_000,
            "hour" => 3_600_000,
            "minute" => 60_000,
            "second" => 1_000,
            "millisecond" => 1,
            "microsecond" => 0,
            _ => {
                return Err(ListingError::malformed(
                    WHAT,
                    format!("uptime unit {unit:?}"),
                ));
            }
        };
        ms = ms.saturating_add(n.saturating_mul(scale));
    }
    Ok(ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::super::captured;
    use super::*;

    #[test]
    fn version_from_capture_matches_heartbeat_spelling() {
        let bodies = captured::replies_to("01-auth-and-api.json.txt", "version");
        assert_eq!(parse_version(&bodies[0]).unwrap(), "1.10.12-release~64bit");
        assert!(parse_version("-ERR no reply").is_err());
        assert!(parse_version("garbage").is_err());
    }

    #[test]
    fn idle_and_busy_status_from_captures() {
        let bodies = captured::replies_to("01-auth-and-api.json.txt", "status");
        let idle = parse_status(&bodies[0]).unwrap();
        assert_eq!(
            idle,
            CoreStatus {
                sessions: 0,
                max_sessions: 1000,
                sps: 0,
                max_sps: 30,
                idle_cpu: 96.23,
                version: "1.10.12-release  64bit".into(),
                ready: true,
                uptime_ms: (3 * 60 + 22) * 1000 + 542,
            }
        );
        let during_call = parse_status(&bodies[1]).unwrap();
        assert_eq!(during_call.sessions, 2);
        assert!(during_call.uptime_ms > idle.uptime_ms);
    }

    #[test]
    fn sessions_match_channel_count() {
        let file = "10-concurrent-calls.json.txt";
        let st = parse_status(&captured::replies_to(file, "status")[0]).unwrap();
        let count = &captured::replies_to(file, "show channels count")[0];
        assert_eq!(
            st.sessions.to_string(),
            count.trim().trim_end_matches(" total.")
        );
        assert_eq!(st.idle_cpu, 49.53);
    }

    #[test]
    fn singular_units_and_not_ready() {
        let body = "UP 1 year, 1 day, 1 hour, 1 minute, 1 second, 1 millisecond, 1 microsecond\n\
                    FreeSWITCH (Version 1.10.9-release+git~20230101~abc 64bit) is not ready\n\
                    7 session(s) - peak 9, last 5min 8 \n\
                    3 session(s) per Sec out of max 50, peak 4, last 5min 4 \n\
                    2000 session(s) max\nmin idle cpu 10.00/0.50\n";
        let st = parse_status(body).unwrap();
        assert!(!st.ready);
        assert_eq!(st.version, "1.10.9-release+git~20230101~abc 64bit");
        assert_eq!(
            (st.sessions, st.sps, st.max_sps, st.max_sessions),
            (7, 3, 50, 2000)
        );
        assert_eq!(st.idle_cpu, 0.5);
        assert_eq!(
            st.uptime_ms,
            366 * 86_400_000 + 3_600_000 + 60_000 + 1_000 + 1
        );
    }

    #[test]
    fn malformed_and_truncated() {
        for body in ["", "junk", "UP forever\n", "x session(s) max\n"] {
            assert!(
                matches!(parse_status(body), Err(ListingError::Malformed { .. })),
                "{body:?}"
            );
        }
        // Cut before the idle cpu figure: a line is missing or a number is cut.
        let body = &captured::replies_to("01-auth-and-api.json.txt", "status")[0];
        let end = body.find("min idle cpu 0.00/").unwrap() + "min idle cpu 0.00/".len();
        for cut in 0..end {
            assert!(parse_status(&body[..cut]).is_err(), "cut at {cut}");
        }
    }
}
