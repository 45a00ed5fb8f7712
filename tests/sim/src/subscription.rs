//! What one ESL listener asked to receive (`event`, `nixevent`,
//! `noevents`, `filter`), with mod_event_socket's rules: the first word may
//! set the format; every word after `CUSTOM` is a subclass; `ALL` includes
//! every CUSTOM subclass; a CUSTOM event without a matching subclass is not
//! delivered unless `ALL` was asked.

use std::collections::HashSet;

use locus_esl::Event;

use crate::templates::KNOWN_EVENTS as KNOWN;
use locus_esl::EventFormat;

/// A listener's subscription.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// Serialisation of delivered events.
    pub format: EventFormat,
    /// `LFLAG_EVENTS`: any `event` command succeeded.
    pub enabled: bool,
    all: bool,
    names: HashSet<String>,
    subclasses: HashSet<String>,
    filters: Vec<(String, String)>,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            format: EventFormat::Plain,
            enabled: false,
            all: false,
            names: HashSet::new(),
            subclasses: HashSet::new(),
            filters: Vec::new(),
        }
    }
}

impl Subscription {
    /// Applies `event <words>` as typed (any case, `xml`, or no format
    /// word at all); returns the reply text.
    pub fn event(&mut self, words: &str) -> String {
        let mut words = words.split(' ').filter(|w| !w.is_empty()).peekable();
        let first = words.peek().map(|w| w.to_ascii_lowercase());
        let format = match first.as_deref() {
            Some("plain") => Some(EventFormat::Plain),
            Some("json") => Some(EventFormat::Json),
            _ => None,
        };
        // XML delivery is not simulated: `xml` keeps the current format.
        if format.is_some() || first.as_deref() == Some("xml") {
            words.next();
        }
        self.subscribe(format, words)
    }

    /// Applies `event <format> <names...>`, the format already read (`None`:
    /// keep the current one); returns the reply text.
    pub fn subscribe<'a>(
        &mut self,
        format: Option<EventFormat>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> String {
        if let Some(f) = format {
            self.format = f;
        }
        let (keywords, subclasses) = split_words(names);
        if keywords.is_empty() {
            return "-ERR no keywords supplied".into();
        }
        for upper in keywords {
            match upper.as_str() {
                "ALL" => self.all = true,
                _ => {
                    self.names.insert(upper);
                }
            }
        }
        self.subclasses
            .extend(subclasses.into_iter().map(str::to_owned));
        self.enabled = true;
        format!("+OK event listener enabled {}", self.format.as_str())
    }

    /// Applies `nixevent <words>`; returns the reply text.
    pub fn nixevent(&mut self, words: &str) -> String {
        let (keywords, subclasses) = split_words(words.split(' ').filter(|w| !w.is_empty()));
        if keywords.is_empty() {
            return "-ERR no keywords supplied".into();
        }
        for upper in keywords {
            match upper.as_str() {
                "CUSTOM" => {}
                "ALL" => {
                    self.all = false;
                    self.names.clear();
                }
                _ => {
                    if self.all {
                        // Removing one name from ALL: every other name stays.
                        self.all = false;
                        self.names = KNOWN.iter().map(|s| (*s).to_owned()).collect();
                        self.names.remove("ALL");
                    }
                    self.names.remove(&upper);
                }
            }
        }
        for w in subclasses {
            self.subclasses.remove(w);
        }
        self.enabled = true;
        "+OK events nixed".into()
    }

    /// Applies `noevents`; returns the reply text.
    pub fn noevents(&mut self) -> String {
        if !self.enabled {
            return "-ERR not listening for events".into();
        }
        let format = self.format;
        *self = Self::default();
        self.format = format;
        "+OK no longer listening for events".into()
    }

    /// Applies `filter <header> <value>` / `filter delete ...`.
    pub fn filter(&mut self, args: &str) -> String {
        let args = args.trim_start();
        let (name, value) = match args.split_once(' ') {
            Some((n, v)) => (n, Some(v)),
            None => (args, None),
        };
        if name.eq_ignore_ascii_case("delete") {
            let Some(v) = value else {
                return "-ERR invalid syntax".into();
            };
            let (h, hv) = match v.split_once(' ') {
                Some((h, hv)) => (h, Some(hv)),
                None => (v, None),
            };
            if h.eq_ignore_ascii_case("all") {
                self.filters.clear();
            } else {
                self.filters
                    .retain(|(k, fv)| !(k == h && hv.is_none_or(|hv| hv == fv)));
            }
            return format!("+OK filter deleted. [{h}][{}]", hv.unwrap_or("(null)"));
        }
        let Some(value) = value else {
            return "-ERR invalid syntax".into();
        };
        self.filters.push((name.to_owned(), value.to_owned()));
        format!("+OK filter added. [{name}]=[{value}]")
    }

    /// Whether `ev` is delivered to this listener.
    pub fn wants(&self, ev: &Event) -> bool {
        if !self.enabled {
            return false;
        }
        let name = ev.name().unwrap_or_default();
        let send = self.all
            || (self.names.contains(name)
                && (name != "CUSTOM" || ev.subclass().is_none_or(|s| self.subclasses.contains(s))));
        if !send || self.filters.is_empty() {
            return send;
        }
        // Filters: deliver only events matching at least one filter.
        self.filters
            .iter()
            .any(|(k, v)| ev.get(k).is_some_and(|hv| hv.eq_ignore_ascii_case(v)))
    }
}

/// Splits the words of `event`/`nixevent` as mod_event_socket reads them:
/// known event names (upper-cased, unknown words dropped) up to and
/// including `CUSTOM`, then every later word as a subclass, verbatim.
fn split_words<'a>(words: impl IntoIterator<Item = &'a str>) -> (Vec<String>, Vec<&'a str>) {
    let mut keywords = Vec::new();
    let mut subclasses = Vec::new();
    let mut custom = false;
    for w in words {
        if custom {
            subclasses.push(w);
            continue;
        }
        let upper = w.to_ascii_uppercase();
        if !KNOWN.contains(&upper.as_str()) {
            continue;
        }
        custom = upper == "CUSTOM";
        keywords.push(upper);
    }
    (keywords, subclasses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, sub: Option<&str>) -> Event {
        let mut e = Event::new(name);
        if let Some(s) = sub {
            e.push("Event-Subclass", s);
        }
        e
    }

    #[test]
    fn filtered_subscription_like_capture_11() {
        let mut s = Subscription::default();
        let reply =
            s.event("json CHANNEL_CREATE HEARTBEAT CUSTOM valet_parking::info sofia::register");
        assert_eq!(reply, "+OK event listener enabled json");
        assert!(s.wants(&ev("CHANNEL_CREATE", None)));
        assert!(!s.wants(&ev("CHANNEL_STATE", None)));
        assert!(s.wants(&ev("CUSTOM", Some("valet_parking::info"))));
        assert!(!s.wants(&ev("CUSTOM", Some("sofia::pre_register"))));
    }

    #[test]
    fn all_and_nix() {
        let mut s = Subscription::default();
        assert_eq!(s.event("plain ALL"), "+OK event listener enabled plain");
        assert!(s.wants(&ev("CUSTOM", Some("anything::x"))));
        assert_eq!(s.nixevent("CHANNEL_STATE"), "+OK events nixed");
        assert!(!s.wants(&ev("CHANNEL_STATE", None)));
        assert!(s.wants(&ev("CHANNEL_CREATE", None)));
        assert_eq!(s.event("json"), "-ERR no keywords supplied");
        assert_eq!(s.noevents(), "+OK no longer listening for events");
        assert!(!s.wants(&ev("CHANNEL_CREATE", None)));
    }
}
