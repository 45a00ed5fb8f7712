//! `show channels as json` / `show calls as json`.
//!
//! Two shapes (mod_commands `show`): with no rows FreeSWITCH prints the
//! literal `{"row_count": 0}\n` (a space, a newline, no `rows` key); with
//! rows it prints cJSON `{"row_count":N,"rows":[{...}]}` with no newline.
//! Every value is a string (NULL columns become `""`), but numbers, null
//! and booleans are accepted too in case another build or the simulator
//! differs.

use serde_json::Value;

use super::{ListingError, ShowRow, check_api_error};

const WHAT: &str = "show json";

/// Parses a `show ... as json` body into its rows, in FreeSWITCH's order.
pub fn parse_show_json(body: &str) -> Result<Vec<ShowRow>, ListingError> {
    let body = check_api_error(body)?;
    let root: Value =
        serde_json::from_str(body).map_err(|e| ListingError::malformed(WHAT, e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(ListingError::malformed(WHAT, "not a JSON object"));
    };
    let count = match root.get("row_count") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ListingError::malformed(WHAT, "no numeric row_count"))?;
    let rows = match root.get("rows") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(rows)) => rows.as_slice(),
        Some(_) => return Err(ListingError::malformed(WHAT, "rows is not an array")),
    };
    // A count that disagrees with the rows means a body cut or mangled on
    // the way: better no listing than a silently short one.
    if rows.len() as u64 != count {
        return Err(ListingError::malformed(
            WHAT,
            format!("row_count {count} but {} rows", rows.len()),
        ));
    }
    rows.iter()
        .map(|row| match row {
            Value::Object(cols) => Ok(cols
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect()),
            _ => Err(ListingError::malformed(WHAT, "row is not an object")),
        })
        .collect()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::super::captured;
    use super::*;

    #[test]
    fn empty_shape_has_no_rows_key() {
        let bodies = captured::replies_to("01-auth-and-api.json.txt", "show channels as json");
        assert_eq!(bodies[0], "{\"row_count\": 0}\n");
        assert!(parse_show_json(&bodies[0]).unwrap().is_empty());
    }

    #[test]
    fn live_call_rows_match_the_events() {
        let bodies = captured::replies_to("01-auth-and-api.json.txt", "show channels as json");
        let rows = parse_show_json(&bodies[1]).unwrap();
        assert_eq!(rows.len(), 2);
        // Both legs share the A-leg's call_uuid; the B-leg is outbound.
        assert_eq!(rows[0]["direction"], "inbound");
        assert_eq!(rows[1]["direction"], "outbound");
        assert_eq!(rows[1]["call_uuid"], rows[0]["uuid"]);
        assert_eq!(rows[0]["callstate"], "ACTIVE");
        assert_eq!(rows[0]["presence_data"], "");
        let calls = captured::replies_to("01-auth-and-api.json.txt", "show calls as json");
        let calls = parse_show_json(&calls[1]).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["b_uuid"], rows[1]["uuid"]);
    }

    #[test]
    fn row_counts_agree_with_show_count() {
        // File 10: three calls, four channels (`show ... count`).
        let file = "10-concurrent-calls.json.txt";
        let count = |cmd: &str| -> usize {
            let body = &captured::replies_to(file, cmd)[0];
            body.trim().trim_end_matches(" total.").parse().unwrap()
        };
        let calls = parse_show_json(&captured::replies_to(file, "show calls as json")[0]).unwrap();
        let chans =
            parse_show_json(&captured::replies_to(file, "show channels as json")[0]).unwrap();
        assert_eq!(calls.len(), count("show calls count"));
        assert_eq!(chans.len(), count("show channels count"));
        assert_eq!((calls.len(), chans.len()), (3, 4));
    }

    #[test]
    fn every_captured_show_json_parses() {
        let mut n = 0;
        for file in captured::FILES {
            for r in captured::api_replies(file) {
                if r.command.starts_with("show ") && r.command.ends_with(" as json") {
                    let rows = parse_show_json(&r.body)
                        .unwrap_or_else(|e| panic!("{file} {}: {e}", r.command));
                    assert!(rows.iter().all(|row| !row.is_empty()));
                    n += 1;
                }
            }
        }
        assert!(n >= 20, "only {n} show replies found");
    }

    #[test]
    fn lenient_values() {
        let rows =
            parse_show_json(r#"{"row_count":"1","rows":[{"a":"x","n":12,"z":null,"b":true}]}"#)
                .unwrap();
        assert_eq!(rows[0]["a"], "x");
        assert_eq!(rows[0]["n"], "12");
        assert_eq!(rows[0]["z"], "");
        assert_eq!(rows[0]["b"], "true");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            "",
            "junk",
            "[]",
            "{}",
            "{\"row_count\":2,\"rows\":[{\"a\":\"b\"}]}",
            "{\"row_count\":1,\"rows\":[\"a\"]}",
            "{\"row_count\":1,\"rows\":{}}",
            "{\"row_count\":1}",
            "{\"row_count\":1,\"rows\":[{\"a\":\"b\"}]}{",
        ] {
            assert!(
                matches!(parse_show_json(body), Err(ListingError::Malformed { .. })),
                "{body:?}"
            );
        }
        assert!(matches!(
            parse_show_json("-ERR SQL Error [x]\n{\"row_count\": 0}\n"),
            Err(ListingError::Fs(_))
        ));
    }

    #[test]
    fn truncated_bodies_never_pass() {
        let body =
            &captured::replies_to("10-concurrent-calls.json.txt", "show channels as json")[0];
        let mut cut = 0;
        while cut + 1 < body.len() {
            if let Some(prefix) = body.get(..cut) {
                assert!(parse_show_json(prefix).is_err(), "cut at {cut}");
            }
            cut += 3;
        }
    }
}
