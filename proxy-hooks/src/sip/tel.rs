//! `tel:` URIs (RFC 3966): the syntax check, and the number a routing
//! reader takes as the user. A tel URI names a number, never a host: the
//! proxy accepts one where RFC 3261 lets a phone put it (the R-URI of an
//! INVITE or MESSAGE, From, To), and it is never a next hop (policy and
//! the router decide which domain a number belongs to).

/// `global-number-digits` (`+` then digits with visual separators) or
/// `local-number-digits` (hex digits, `*`, `#`, separators), RFC 3966 3.
/// Returns whether it is global.
fn number_kind(n: &str) -> Option<bool> {
    let separator = |c: char| matches!(c, '-' | '.' | '(' | ')');
    if let Some(digits) = n.strip_prefix('+') {
        let ok = digits.chars().all(|c| c.is_ascii_digit() || separator(c))
            && digits.chars().any(|c| c.is_ascii_digit());
        return ok.then_some(true);
    }
    let dial = |c: char| c.is_ascii_hexdigit() || matches!(c, '*' | '#');
    let ok = n.chars().all(|c| dial(c) || separator(c)) && n.chars().any(dial);
    ok.then_some(false)
}

/// `pname = 1*(alphanum / "-")`.
fn is_pname(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `pvalue = 1*paramchar` (unreserved, `[]/:&+$`, `%HH`).
fn is_pvalue(s: &str) -> bool {
    !s.is_empty()
        && super::uri::escapes_ok(s)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()[]/:&+$%".contains(c))
}

/// `descriptor = domainname / global-number-digits` (RFC 3966 5.1.5).
fn is_descriptor(s: &str) -> bool {
    if s.starts_with('+') {
        return number_kind(s) == Some(true);
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Splits what follows `tel:` into the number and its parameters (after
/// the first `;`, without it), when it is a valid RFC 3966
/// `telephone-subscriber`: a global number, or a local one with its
/// mandatory `phone-context` (5.1.5).
pub(crate) fn split(subscriber: &str) -> Option<(&str, &str)> {
    let (number, params) = subscriber.split_once(';').unwrap_or((subscriber, ""));
    let global = number_kind(number)?;
    let mut context = false;
    for p in params.split(';').filter(|p| !p.is_empty()) {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if !is_pname(name) || value.is_some_and(|v| !is_pvalue(v)) {
            return None;
        }
        if name.eq_ignore_ascii_case("phone-context") {
            context = true;
            if !value.is_some_and(is_descriptor) {
                return None;
            }
        }
    }
    (global || context).then_some((number, params))
}

/// The number of a `tel:` URI, given what follows `tel:`: `+3906123`
/// of `+3906123;phone-context=...`. `None` when it is not a valid tel URI.
/// The routing readers take it as the user (there is no host).
pub fn number(subscriber: &str) -> Option<&str> {
    split(subscriber).map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_and_local_numbers() {
        for (s, want) in [
            ("+390612345678", Some("+390612345678")),
            ("+1-201-555-0123;ext=12", Some("+1-201-555-0123")),
            ("+1(201)5550123;isub=%41b", Some("+1(201)5550123")),
            ("7042;phone-context=example.com", Some("7042")),
            ("*8#;phone-context=+3906", Some("*8#")),
            ("1000;PHONE-CONTEXT=pbx.example.com.;unknown", Some("1000")),
        ] {
            assert_eq!(number(s), want, "{s}");
        }
    }

    #[test]
    fn refuses_what_rfc_3966_does_not_allow() {
        for s in [
            "",
            "+",
            "+-.",
            "7042",                // local without phone-context
            "7042;phone-context=", // empty descriptor
            "7042;phone-context=-bad-.com",
            "7042;phone-context=+",
            "+1 555",     // space
            "+1555;=x",   // empty pname
            "+1555;ext=", // empty pvalue
            "+1555;x=a\"b",
            "+1555;x=%zz",
            "user@host",
        ] {
            assert_eq!(number(s), None, "{s:?}");
        }
    }
}
