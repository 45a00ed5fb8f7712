//! One FreeSWITCH event as an ordered list of headers (plus an optional body).
//!
//! Real events break the easy models: the same header can appear twice in
//! one JSON object (`Hangup-Cause`, `Conference-Name`, ...), some values are
//! arrays (`variable_DP_MATCH`), and plain events are percent-encoded. So an
//! [`Event`] keeps headers in wire order, duplicates included, and stores
//! array values in FreeSWITCH's own plain form `ARRAY::a|:b`.
//!
//! A channel event carries ~200 headers and a busy box sends thousands a
//! second, so the headers live in one string with their offsets beside it:
//! a few allocations per event instead of two per header (allocation was
//! half of the agent's time per event, see `docs/performance.md`). JSON
//! parsing is in `json`.

mod json;

use std::fmt;
use std::ops::Range;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Characters FreeSWITCH leaves raw in plain events (checked against the
/// captures): alphanumerics and `- . _ ~ , / ( ) ' * !`.
const PLAIN_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b',')
    .remove(b'/')
    .remove(b'(')
    .remove(b')')
    .remove(b'\'')
    .remove(b'*')
    .remove(b'!');

/// Prefix FreeSWITCH uses for array values in plain events.
pub const ARRAY_PREFIX: &str = "ARRAY::";

/// Why an event body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The JSON body is not one JSON object of scalar or array values.
    #[error("malformed json event: {0}")]
    Json(#[from] serde_json::Error),
    /// A plain event line has no `: ` separator.
    #[error("malformed plain event line: {0:?}")]
    PlainLine(String),
    /// The event body is not UTF-8.
    #[error("event is not utf-8")]
    Utf8,
}

/// A FreeSWITCH event: headers in wire order and an optional body.
#[derive(Clone, Default)]
pub struct Event {
    /// Every header name and value, back to back (values replaced by
    /// [`Event::set`] stay behind, unreferenced).
    text: String,
    /// Where each header's name and value are in `text`, in wire order.
    spans: Vec<Span>,
    body: Option<String>,
}

#[derive(Clone, Debug)]
struct Span {
    name: Range<usize>,
    value: Range<usize>,
}

impl PartialEq for Event {
    /// Same headers in the same order and the same body.
    fn eq(&self, other: &Self) -> bool {
        self.spans.len() == other.spans.len()
            && self.headers().eq(other.headers())
            && self.body == other.body
    }
}

impl Eq for Event {}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name())
            .field("subclass", &self.subclass())
            .field("unique_id", &self.get("Unique-ID"))
            .field("headers", &self.spans.len())
            .finish()
    }
}

impl Event {
    /// An event with only `Event-Name` set.
    pub fn new(name: &str) -> Self {
        let mut ev = Self::default();
        ev.push("Event-Name", name);
        ev
    }

    /// Appends a header (duplicates allowed, as on the wire).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.push_str(&name.into(), &value.into());
    }

    fn push_str(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        let mid = self.text.len();
        self.text.push_str(value);
        self.spans.push(Span {
            name: start..mid,
            value: mid..self.text.len(),
        });
    }

    /// Appends a value to `text`; its range.
    fn append(&mut self, value: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(value);
        start..self.text.len()
    }

    fn name_of(&self, span: &Span) -> &str {
        &self.text[span.name.clone()]
    }

    fn value_of(&self, span: &Span) -> &str {
        &self.text[span.value.clone()]
    }

    /// Replaces every occurrence of `name` with one header, or appends it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        let Some(pos) = self.spans.iter().position(|s| self.name_of(s) == name) else {
            self.push_str(name, &value);
            return;
        };
        let range = self.append(&value);
        self.spans[pos].value = range;
        let text = &self.text;
        let mut i = 0;
        self.spans.retain(|s| {
            let keep = i <= pos || &text[s.name.clone()] != name;
            i += 1;
            keep
        });
    }

    /// Sets the body (`_body` in JSON, the raw tail in plain).
    pub fn set_body(&mut self, body: impl Into<String>) {
        self.body = Some(body.into());
    }

    /// First value of a header, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// First value of a header that is present and non-empty.
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A channel variable (`variable_<name>`), non-empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(k, v)| !v.is_empty() && k.strip_prefix("variable_") == Some(name))
            .map(|(_, v)| v)
    }

    /// `Event-Name`.
    pub fn name(&self) -> Option<&str> {
        self.get("Event-Name")
    }

    /// `Event-Subclass` (for `CUSTOM` events).
    pub fn subclass(&self) -> Option<&str> {
        self.get("Event-Subclass")
    }

    /// `Unique-ID` (the channel uuid) for channel events.
    pub fn unique_id(&self) -> Option<&str> {
        self.get_nonempty("Unique-ID")
    }

    /// The body, if any (e.g. a `BACKGROUND_JOB` result).
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    /// All headers in wire order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans
            .iter()
            .map(|s| (self.name_of(s), self.value_of(s)))
    }

    /// Parses a `text/event-json` body. Duplicate keys are kept; array
    /// values become `ARRAY::a|:b`; `_body` becomes the body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        json::parse(bytes)
    }

    /// Parses a `text/event-plain` body: `Name: value` lines with
    /// percent-encoded values, a blank line, then, when the headers carry a
    /// `Content-Length`, that many bytes of raw body.
    pub fn from_plain(bytes: &[u8]) -> Result<Self, EventError> {
        let text = std::str::from_utf8(bytes).map_err(|_| EventError::Utf8)?;
        let (head, rest) = match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None => (text.trim_end_matches('\n'), ""),
        };
        let mut ev = Event {
            text: String::with_capacity(head.len()),
            ..Event::default()
        };
        for line in head.split('\n').filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
                .ok_or_else(|| EventError::PlainLine(line.chars().take(80).collect()))?;
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| EventError::Utf8)?;
            ev.push_str(k, &v);
        }
        if let Some(len) = ev
            .get("Content-Length")
            .and_then(|l| l.parse::<usize>().ok())
        {
            let body = rest.get(..len.min(rest.len())).unwrap_or(rest);
            ev.body = Some(body.to_owned());
        }
        Ok(ev)
    }

    /// Serialises as FreeSWITCH does for `text/event-json`: one object, no
    /// trailing newline, duplicates kept, `ARRAY::` values as JSON arrays,
    /// the body under `_body` after a `Content-Length` header.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 6 * self.spans.len() + 2);
        out.push('{');
        let mut first = true;
        let mut push = |out: &mut String, k: &str, v: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            push_json_str(out, k);
            out.push(':');
            match v.strip_prefix(ARRAY_PREFIX) {
                Some(items) => {
                    out.push('[');
                    for (i, item) in items.split("|:").enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_json_str(out, item);
                    }
                    out.push(']');
                }
                None => push_json_str(out, v),
            }
        };
        for (k, v) in self.headers() {
            if self.body.is_some() && k == "Content-Length" {
                continue;
            }
            push(&mut out, k, v);
        }
        if let Some(body) = &self.body {
            push(&mut out, "Content-Length", &body.len().to_string());
            push(&mut out, "_body", body);
        }
        out.push('}');
        out
    }

    /// Serialises as FreeSWITCH does for `text/event-plain`: percent-encoded
    /// `Name: value` lines, a blank line, then the raw body if any (with an
    /// inner `Content-Length`).
    pub fn to_plain(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 4 * self.spans.len() + 2);
        for (k, v) in self.headers() {
            if self.body.is_some() && k == "Content-Length" {
                continue;
            }
            out.push_str(k);
            out.push_str(": ");
            out.extend(utf8_percent_encode(v, PLAIN_VALUE));
            out.push('\n');
        }
        if let Some(body) = &self.body {
            out.push_str("Content-Length: ");
            out.push_str(&body.len().to_string());
            out.push_str("\n\n");
            out.push_str(body);
        } else {
            out.push('\n');
        }
        out
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping of a plain &str cannot fail.
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_duplicates_and_arrays() {
        let ev = Event::from_json(
            br#"{"Event-Name":"CHANNEL_HANGUP_COMPLETE","Hangup-Cause":"NORMAL_CLEARING","variable_DP_MATCH":["a","b"],"Hangup-Cause":"NORMAL_CLEARING"}"#,
        )
        .unwrap();
        assert_eq!(
            ev.headers().filter(|(k, _)| *k == "Hangup-Cause").count(),
            2
        );
        assert_eq!(ev.var("DP_MATCH"), Some("ARRAY::a|:b"));
        let back = Event::from_json(ev.to_json().as_bytes()).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn plain_round_trip_with_body() {
        let mut ev = Event::new("BACKGROUND_JOB");
        ev.push("Job-UUID", "7f4d");
        ev.push("Job-Command-Arg", "a b:c@d=e%f+g");
        ev.set_body("+OK 1234\n");
        let plain = ev.to_plain();
        assert!(plain.contains("a%20b%3Ac%40d%3De%25f%2Bg"));
        let back = Event::from_plain(plain.as_bytes()).unwrap();
        assert_eq!(back.get("Job-Command-Arg"), Some("a b:c@d=e%f+g"));
        assert_eq!(back.body(), Some("+OK 1234\n"));
    }

    #[test]
    fn set_replaces_all_and_equality_ignores_leftovers() {
        let mut ev = Event::new("CUSTOM");
        ev.push("A", "1");
        ev.push("B", "2");
        ev.push("A", "3");
        ev.set("A", "long replacement value");
        assert_eq!(
            ev.headers().collect::<Vec<_>>(),
            [
                ("Event-Name", "CUSTOM"),
                ("A", "long replacement value"),
                ("B", "2")
            ]
        );
        ev.set("C", "4");
        assert_eq!(ev.get("C"), Some("4"));
        let mut fresh = Event::new("CUSTOM");
        fresh.push("A", "long replacement value");
        fresh.push("B", "2");
        fresh.push("C", "4");
        assert_eq!(ev, fresh);
        fresh.push("D", "");
        assert_ne!(ev, fresh);
    }

    #[test]
    fn json_scalars_escapes_and_body() {
        let ev = Event::from_json(
            br#"{"Event-Name":"BACKGROUND_JOB","n":42,"neg":-1,"f":1.5,"t":true,"z":null,"e":"a\"b\u00e9\r\n","arr":[],"_body":"+OK x\n","Content-Length":"6"}"#,
        )
        .unwrap();
        let got: Vec<_> = ev.headers().collect();
        assert_eq!(
            got,
            [
                ("Event-Name", "BACKGROUND_JOB"),
                ("n", "42"),
                ("neg", "-1"),
                ("f", "1.5"),
                ("t", "true"),
                ("z", ""),
                ("e", "a\"b\u{e9}\r\n"),
                ("arr", "ARRAY::"),
                ("Content-Length", "6"),
            ]
        );
        assert_eq!(ev.body(), Some("+OK x\n"));
        assert!(Event::from_json(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn json_rejects_garbage() {
        assert!(Event::from_json(b"[1,2]").is_err());
        assert!(Event::from_json(b"{\"a\":").is_err());
        assert!(Event::from_json(b"{\"a\":{\"b\":1}}").is_err());
    }
}
