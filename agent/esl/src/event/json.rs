//! `text/event-json` bodies into [`Event`]s without a `String` per header:
//! keys and values are appended straight into the event's text as serde
//! reads them.

use std::fmt::{self, Write};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{ARRAY_PREFIX, Event, EventError, Span};

/// Parses one JSON object of FreeSWITCH event headers.
pub(super) fn parse(bytes: &[u8]) -> Result<Event, EventError> {
    // One UTF-8 check for the whole body; reading from a `str`, serde_json
    // then does not check each string again.
    let text = std::str::from_utf8(bytes).map_err(|_| EventError::Utf8)?;
    let mut ev = Event {
        text: String::with_capacity(text.len()),
        // ~50 bytes of JSON per header in the captures.
        spans: Vec::with_capacity(text.len() / 48 + 1),
        body: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(EventVisitor(&mut ev))?;
    de.end()?;
    Ok(ev)
}

struct EventVisitor<'a>(&'a mut Event);

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of FreeSWITCH event headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ev = self.0;
        loop {
            let start = ev.text.len();
            if map.next_key_seed(Append(&mut ev.text))?.is_none() {
                return Ok(());
            }
            let mid = ev.text.len();
            if &ev.text[start..mid] == "_body" {
                ev.text.truncate(start);
                let mut body = String::new();
                map.next_value_seed(Append(&mut body))?;
                ev.body = Some(body);
            } else {
                map.next_value_seed(Append(&mut ev.text))?;
                ev.spans.push(Span {
                    name: start..mid,
                    value: mid..ev.text.len(),
                });
            }
        }
    }
}

/// Reads a string, a scalar, or an array of those (joined as
/// `ARRAY::a|:b`), appending its text to a `String`.
struct Append<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Append<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, bool, null or array of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
    // Writing to a String cannot fail.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.0;
        out.push_str(ARRAY_PREFIX);
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push_str("|:");
            }
            if seq.next_element_seed(Append(&mut *out))?.is_none() {
                out.truncate(mark);
                return Ok(());
            }
            first = false;
        }
    }
}
