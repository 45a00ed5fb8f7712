//! Ordered raw headers and the typed readers a proxy needs.
//!
//! Headers stay `(name, raw value)` as received, so everything the proxy
//! does not touch is forwarded byte for byte. Names compare
//! case-insensitively and compact forms (RFC 3261 7.3.3, `v:` for `Via`)
//! resolve to their long names. List headers (`Via`, `Route`, ...) may carry
//! several values in one line, comma-separated (RFC 3261 7.3.1). Typed
//! values live in [`super::fields`].

use std::fmt;

/// Long name of a header name, resolving compact forms (RFC 3261 20, RFC 3515, RFC 3892, RFC 4028).
pub fn canonical(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'v' => "Via",
        b'f' => "From",
        b't' => "To",
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'e' => "Content-Encoding",
        b'k' => "Supported",
        b's' => "Subject",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'u' => "Allow-Events",
        b'x' => "Session-Expires",
        _ => name,
    }
}

/// Whether two header names mean the same header.
pub fn same_name(a: &str, b: &str) -> bool {
    canonical(a).eq_ignore_ascii_case(canonical(b))
}

/// Splits a header value on commas outside quotes and `<>`.
pub fn split_list(value: &str) -> Vec<&str> {
    ListItems::new(value).collect()
}

/// The first non-empty value of a list header line, as [`split_list`]
/// would give it, without building the list (top Via on every message).
fn first_item(value: &str) -> Option<&str> {
    ListItems::new(value).next()
}

/// The non-empty, trimmed items of a comma-separated header value
/// (commas inside quotes or `<>` do not split).
struct ListItems<'a> {
    value: &'a str,
    pos: usize,
}

impl<'a> ListItems<'a> {
    fn new(value: &'a str) -> Self {
        ListItems { value, pos: 0 }
    }
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        while self.pos <= self.value.len() {
            let rest = &self.value[self.pos..];
            let (mut quoted, mut angle, mut escaped) = (false, false, false);
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if quoted => escaped = true,
                    '"' => quoted = !quoted,
                    '<' if !quoted => angle = true,
                    '>' if !quoted => angle = false,
                    ',' if !quoted && !angle => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let item = rest[..end].trim();
            self.pos += end + 1;
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    }
}

/// One header line: name as received, raw value (folding already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name as received (`v`, `VIA`, `Via`).
    pub name: String,
    /// Raw value, trimmed.
    pub value: String,
}

/// The headers of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// First value of `name` (the whole line, list or not).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a list header, across lines, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|h| same_name(&h.name, name))
            .flat_map(|h| split_list(&h.value))
            .collect()
    }

    /// The first value of list header `name`: `get_all(name)` first
    /// element, without collecting the others.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|h| same_name(&h.name, name))
            .find_map(|h| first_item(&h.value))
    }

    /// Appends a header at the end.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push(Header {
            name: name.to_string(),
            value: value.to_string(),
        });
    }

    /// Inserts a value before every other value of `name` (a new line above
    /// the first such line, else at the top).
    pub fn prepend(&mut self, name: &str, value: &str) {
        let at = self
            .0
            .iter()
            .position(|h| same_name(&h.name, name))
            .unwrap_or(0);
        self.0.insert(
            at,
            Header {
                name: name.to_string(),
                value: value.to_string(),
            },
        );
    }

    /// Removes and returns the first value of list header `name`, leaving
    /// the rest of its line in place.
    pub fn pop_first(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|h| same_name(&h.name, name))?;
        let mut values: Vec<String> = split_list(&self.0[at].value)
            .into_iter()
            .map(str::to_string)
            .collect();
        if values.len() <= 1 {
            return Some(self.0.remove(at).value);
        }
        let first = values.remove(0);
        self.0[at].value = values.join(", ");
        Some(first)
    }

    /// Replaces the first value of list header `name`, keeping the rest of
    /// its line; `false` when there is none.
    pub fn set_first(&mut self, name: &str, value: &str) -> bool {
        let Some(at) = self.0.iter().position(|h| same_name(&h.name, name)) else {
            return false;
        };
        let mut values: Vec<&str> = split_list(&self.0[at].value);
        if values.is_empty() {
            values.push(value);
        } else {
            values[0] = value;
        }
        self.0[at].value = values.join(", ");
        true
    }

    /// Removes every line of `name`; returns how many.
    pub fn remove_all(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !same_name(&h.name, name));
        before - self.0.len()
    }

    /// Replaces the first line of `name` (or appends one).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|h| same_name(&h.name, name)) {
            Some(h) => h.value = value.to_string(),
            None => self.push(name, value),
        }
    }

    /// Removes every header whose name starts with `prefix` (case-insensitive), e.g. `X-Locus-`.
    pub fn remove_prefixed(&mut self, prefix: &str) -> usize {
        let before = self.0.len();
        let p = prefix.to_ascii_lowercase();
        self.0
            .retain(|h| !h.name.to_ascii_lowercase().starts_with(&p));
        before - self.0.len()
    }
}

/// `;name=value` parameters, in order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `a=1;b;c=2` (without the leading `;`).
    pub fn parse(s: &str) -> Params {
        let items = s.split(';').map(str::trim).filter(|p| !p.is_empty());
        Params(
            items
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                    None => (p.to_string(), None),
                })
                .collect(),
        )
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_the_first_of_get_all() {
        let h = Headers(vec![
            Header {
                name: "To".into(),
                value: "<sip:a@b>".into(),
            },
            Header {
                name: "v".into(),
                value: " , ".into(),
            },
            Header {
                name: "Via".into(),
                value: r#", SIP/2.0/UDP h1;x="a,\"b", SIP/2.0/UDP h2"#.into(),
            },
            Header {
                name: "VIA".into(),
                value: "SIP/2.0/UDP h3".into(),
            },
        ]);
        let all = h.get_all("Via");
        assert_eq!(all.len(), 3);
        assert_eq!(h.first("Via"), Some(all[0]));
        assert_eq!(h.first("Via"), Some(r#"SIP/2.0/UDP h1;x="a,\"b""#));
        assert_eq!(h.first("Route"), None);
        let angle = Headers(vec![Header {
            name: "Route".into(),
            value: "<sip:p1;lr>,<sip:p2;lr>".into(),
        }]);
        assert_eq!(angle.first("Route"), Some("<sip:p1;lr>"));
    }
}
