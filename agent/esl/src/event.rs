//! One FreeSWITCH event as an ordered list of headers (plus an optional body).
//!
//! Real events break the easy models: the same header can appear twice in
//! one JSON object (`Hangup-Cause`, `Conference-Name`, ...), some values are
//! arrays (`variable_DP_MATCH`), and plain events are percent-encoded. So an
//! [`Event`] keeps headers in wire order, duplicates included, and stores
//! array values in FreeSWITCH's own plain form `ARRAY::a|:b`.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Event {
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name())
            .field("subclass", &self.subclass())
            .field("unique_id", &self.get("Unique-ID"))
            .field("headers", &self.headers.len())
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
        self.headers.push((name.into(), value.into()));
    }

    /// Replaces every occurrence of `name` with one header, or appends it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(pos) = self.headers.iter().position(|(k, _)| k == name) {
            self.headers[pos].1 = value;
            let mut seen = false;
            self.headers.retain(|(k, _)| {
                if k != name {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
        } else {
            self.headers.push((name.to_owned(), value));
        }
    }

    /// Sets the body (`_body` in JSON, the raw tail in plain).
    pub fn set_body(&mut self, body: impl Into<String>) {
        self.body = Some(body.into());
    }

    /// First value of a header, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of a header that is present and non-empty.
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A channel variable (`variable_<name>`), non-empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, v)| !v.is_empty() && k.strip_prefix("variable_") == Some(name))
            .map(|(_, v)| v.as_str())
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
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Parses a `text/event-json` body. Duplicate keys are kept; array
    /// values become `ARRAY::a|:b`; `_body` becomes the body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let ev = de.deserialize_map(EventVisitor)?;
        de.end()?;
        Ok(ev)
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
        let mut ev = Event::default();
        for line in head.split('\n').filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
                .ok_or_else(|| EventError::PlainLine(line.chars().take(80).collect()))?;
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| EventError::Utf8)?;
            ev.headers.push((k.to_owned(), v.into_owned()));
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
        let mut out = String::with_capacity(64 * self.headers.len() + 2);
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
        for (k, v) in &self.headers {
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
        let mut out = String::with_capacity(64 * self.headers.len() + 2);
        for (k, v) in &self.headers {
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

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of FreeSWITCH event headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut ev = Event::default();
        while let Some(key) = map.next_key::<String>()? {
            let HeaderValue(value) = map.next_value()?;
            if key == "_body" {
                ev.body = Some(value);
            } else {
                ev.headers.push((key, value));
            }
        }
        Ok(ev)
    }
}

/// A header value: a string, a scalar, or an array (joined as `ARRAY::`).
struct HeaderValue(String);

impl<'de> de::Deserialize<'de> for HeaderValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(HeaderValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, bool, null or array of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        let mut out = String::from(ARRAY_PREFIX);
        let mut first = true;
        while let Some(HeaderValue(item)) = seq.next_element()? {
            if !first {
                out.push_str("|:");
            }
            first = false;
            out.push_str(&item);
        }
        Ok(out)
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
    fn json_rejects_garbage() {
        assert!(Event::from_json(b"[1,2]").is_err());
        assert!(Event::from_json(b"{\"a\":").is_err());
        assert!(Event::from_json(b"{\"a\":{\"b\":1}}").is_err());
    }
}
