//! Feature codes compiled from [`FeatureConfig`]: which locality rule (if
//! any) a dialled R-URI user names, with its argument (extension, lot and
//! slot, room, queue) expanded from the pattern's captures.
//!
//! One [`RegexSet`] pass answers "which codes match" for every request, so
//! a standard call pays one automaton scan, not one per pattern.

use regex::{Regex, RegexSet};

use crate::routing::config::{ConfigError, FeatureConfig};

/// What a dialled feature code asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `*8`: pick up a call ringing in the caller's pickup groups.
    GroupPickup,
    /// `**EXT` / `*4EXT`: pick up the call ringing `ext`.
    DirectedPickup {
        /// The extension.
        ext: String,
    },
    /// Park into or retrieve from a valet lot.
    Valet {
        /// The lot.
        lot: String,
        /// The slot, when the code names one.
        slot: Option<String>,
    },
    /// Join a conference room.
    Conference {
        /// The room.
        room: String,
    },
    /// Enter or serve a queue.
    Queue {
        /// The queue.
        queue: String,
    },
}

#[derive(Debug)]
enum Kind {
    Group,
    Directed(String),
    Valet(String, Option<String>),
    Room(String),
    Queue(String),
}

/// The compiled feature codes, in match order.
#[derive(Debug)]
pub struct Features {
    set: RegexSet,
    rules: Vec<(Regex, Kind)>,
}

fn compile(pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern).map_err(|e| ConfigError::Pattern {
        pattern: pattern.to_owned(),
        source: Box::new(e),
    })
}

fn template(t: &str, what: &str) -> Result<String, ConfigError> {
    if t.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "features: empty {what} template"
        )));
    }
    Ok(t.to_owned())
}

impl Features {
    /// Compiles every pattern; the first that does not compile is the error.
    pub fn compile(cfg: &FeatureConfig) -> Result<Self, ConfigError> {
        let mut rules: Vec<(Regex, Kind)> = Vec::new();
        for p in &cfg.group_pickup {
            rules.push((compile(p)?, Kind::Group));
        }
        for c in &cfg.directed_pickup {
            rules.push((
                compile(&c.pattern)?,
                Kind::Directed(template(&c.ext, "ext")?),
            ));
        }
        for c in &cfg.valet {
            let slot = c.slot.as_deref().map(|s| template(s, "slot")).transpose()?;
            rules.push((
                compile(&c.pattern)?,
                Kind::Valet(template(&c.lot, "lot")?, slot),
            ));
        }
        for c in &cfg.conference {
            rules.push((compile(&c.pattern)?, Kind::Room(template(&c.room, "room")?)));
        }
        for c in &cfg.queue {
            rules.push((
                compile(&c.pattern)?,
                Kind::Queue(template(&c.queue, "queue")?),
            ));
        }
        let set = RegexSet::new(rules.iter().map(|(r, _)| r.as_str())).map_err(|e| {
            ConfigError::Pattern {
                pattern: "(feature code set)".into(),
                source: Box::new(e),
            }
        })?;
        Ok(Self { set, rules })
    }

    /// The feature `user` dials, if any: the first matching code. A code
    /// whose template expands to nothing (a missing capture) is skipped.
    pub fn find(&self, user: &str) -> Option<Feature> {
        if self.rules.is_empty() || user.is_empty() {
            return None;
        }
        for i in self.set.matches(user).iter() {
            let (re, kind) = &self.rules[i];
            let Some(caps) = re.captures(user) else {
                continue;
            };
            let expand = |t: &str| {
                let mut out = String::new();
                caps.expand(t, &mut out);
                (!out.is_empty()).then_some(out)
            };
            let found = match kind {
                Kind::Group => Some(Feature::GroupPickup),
                Kind::Directed(t) => expand(t).map(|ext| Feature::DirectedPickup { ext }),
                Kind::Valet(lot, slot) => match (expand(lot), slot.as_deref().map(expand)) {
                    (Some(lot), None) => Some(Feature::Valet { lot, slot: None }),
                    (Some(lot), Some(Some(slot))) => Some(Feature::Valet {
                        lot,
                        slot: Some(slot),
                    }),
                    _ => None,
                },
                Kind::Room(t) => expand(t).map(|room| Feature::Conference { room }),
                Kind::Queue(t) => expand(t).map(|queue| Feature::Queue { queue }),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::routing::config::QueueCode;

    fn vanilla() -> Features {
        Features::compile(&FeatureConfig::default()).unwrap()
    }

    fn valet(lot: &str, slot: Option<&str>) -> Feature {
        Feature::Valet {
            lot: lot.into(),
            slot: slot.map(Into::into),
        }
    }

    #[test]
    fn vanilla_codes() {
        let f = vanilla();
        let ext = |e: &str| Some(Feature::DirectedPickup { ext: e.into() });
        assert_eq!(f.find("*8"), Some(Feature::GroupPickup));
        assert_eq!(f.find("**1001"), ext("1001"));
        // Not in vanilla `default.xml`: the defaults claim only what it has.
        assert_eq!(f.find("*41002"), None);
        assert_eq!(f.find("886"), None);
        assert_eq!(f.find("6000"), Some(valet("valet_parking_lot", None)));
        assert_eq!(
            f.find("6001"),
            Some(valet("valet_parking_lot", Some("6001")))
        );
        assert_eq!(
            f.find("6099"),
            Some(valet("valet_parking_lot", Some("6099")))
        );
        let room = |r: &str| Some(Feature::Conference { room: r.into() });
        assert_eq!(f.find("3001"), room("3001"));
        assert_eq!(f.find("3599"), room("3599"));
        assert_eq!(f.find("3650"), room("3650"));
        assert_eq!(f.find("3899"), room("3899"));
        assert_eq!(f.find("7001"), None, "no vanilla call-center code");
        let queue = |q: &str| Some(Feature::Queue { queue: q.into() });
        assert_eq!(f.find("5900"), queue("5900"));
        assert_eq!(f.find("5901"), queue("5900"));
        assert_eq!(f.find("park+42"), queue("42"));
    }

    #[test]
    fn ordinary_numbers_are_not_codes() {
        let f = vanilla();
        for user in [
            "1001", "*80", "*8x", "**", "3401", "3999", "300", "30011", "6100", "5902", "",
        ] {
            assert_eq!(f.find(user), None, "{user}");
        }
    }

    #[test]
    fn missing_captures_skip_the_code() {
        let cfg = FeatureConfig {
            group_pickup: vec![],
            directed_pickup: vec![],
            valet: vec![],
            conference: vec![],
            queue: vec![
                QueueCode {
                    pattern: r"^q(\d*)$".into(),
                    queue: "$1".into(),
                },
                QueueCode {
                    pattern: r"^q".into(),
                    queue: "fallback".into(),
                },
            ],
        };
        let f = Features::compile(&cfg).unwrap();
        assert_eq!(f.find("q7"), Some(Feature::Queue { queue: "7".into() }));
        assert_eq!(
            f.find("q"),
            Some(Feature::Queue {
                queue: "fallback".into()
            })
        );
    }
}
