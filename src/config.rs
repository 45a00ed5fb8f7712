//! Layered configuration: the embedded default (`examples/locus.toml`) ->
//! the `--config` file -> `LOCUS_*` environment -> command-line flags.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use toml::{Table, Value};

/// The built-in default, which is also the commented sample.
pub const DEFAULT_TOML: &str = include_str!("../examples/locus.toml");

/// The whole `locus.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[agent]`.
    pub agent: locus_agent::AgentConfig,
    /// `[proxy]`.
    pub proxy: locus_proxy::server::ProxyConfig,
}

/// `[redis]`: where the farm state lives.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Store URL (may carry a password: redacted in Debug).
    pub url: String,
    /// Key prefix.
    pub prefix: String,
    /// Time limit of one operation.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `redis://:secret@host` -> `redis://:***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// One override: a dotted path (`agent.esl.password`) and its value.
pub type Override = (String, Value);

/// Builds the configuration from its layers and validates it.
pub fn load(
    file: Option<&std::path::Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: Vec<Override>,
) -> anyhow::Result<Config> {
    let mut root: Table = DEFAULT_TOML.parse().context("built-in default config")?;
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: Table = text
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        merge(&mut root, table);
    }
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("LOCUS_") else {
            continue;
        };
        if rest.is_empty() || !rest.contains("__") {
            continue; // LOCUS_FIXTURES and the like are not config.
        }
        let path = rest
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        set_path(&mut root, &path, parse_scalar(&v)).with_context(|| format!("environment {k}"))?;
    }
    for (path, v) in flags {
        set_path(&mut root, &path, v).with_context(|| format!("flag for {path}"))?;
    }
    let cfg: Config = Value::Table(root)
        .try_into()
        .context("invalid configuration")?;
    cfg.agent.validate().context("invalid configuration")?;
    if cfg.redis.timeout.is_zero() {
        bail!("invalid configuration: redis.timeout must be > 0");
    }
    Ok(cfg)
}

/// An environment value as TOML when it parses as a scalar or an array
/// (`LOCUS_PROXY__SIP__UDP='["0.0.0.0:5060"]'`), else a string.
fn parse_scalar(v: &str) -> Value {
    match format!("x = {v}").parse::<Table>() {
        Ok(mut t) => match t.remove("x") {
            Some(
                val @ (Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Array(_)),
            ) => val,
            _ => Value::String(v.to_owned()),
        },
        Err(_) => Value::String(v.to_owned()),
    }
}

fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(root: &mut Table, path: &str, value: Value) -> anyhow::Result<()> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        bail!("empty key")
    };
    let mut t = root;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        t = match entry {
            Value::Table(inner) => inner,
            _ => bail!("{path}: {p} is not a section"),
        };
    }
    t.insert(last.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_lite::TempFile {
        tempfile_lite::TempFile::new(text)
    }

    #[test]
    fn default_is_valid() {
        let cfg = load(None, Vec::new(), Vec::new()).unwrap();
        assert_eq!(cfg.agent.node_id.as_str(), "fs1");
        assert_eq!(cfg.redis.prefix, "locus:");
        assert_eq!(cfg.agent.model.group_var, "called_party_callgroup");
    }

    #[test]
    fn layers_apply_in_order() {
        let f = write(
            "[agent]\nnode_id = \"from-file\"\nweight = 7\n[agent.esl]\npassword = \"file\"\n",
        );
        let env = vec![
            ("LOCUS_AGENT__ESL__PASSWORD".to_owned(), "env".to_owned()),
            ("LOCUS_AGENT__WEIGHT".to_owned(), "9".to_owned()),
            ("LOCUS_FIXTURES".to_owned(), "/x".to_owned()),
        ];
        let flags = vec![(
            "agent.node_id".to_owned(),
            Value::String("from-flag".into()),
        )];
        let cfg = load(Some(f.path()), env, flags).unwrap();
        assert_eq!(cfg.agent.node_id.as_str(), "from-flag");
        assert_eq!(cfg.agent.weight, 9);
        assert_eq!(cfg.agent.esl.password, "env");
        assert!(
            !format!("{cfg:?}").contains("env\""),
            "password must be redacted"
        );
    }

    #[test]
    fn farm_secret_from_the_environment_never_printed() {
        let cfg = load(None, Vec::new(), Vec::new()).unwrap();
        let sec = &cfg.proxy.security;
        assert_eq!(sec.secret, None);
        assert_eq!(
            sec.preloaded_route,
            locus_proxy::proxy::PreloadedRoute::Refuse
        );
        let env = vec![(
            "LOCUS_PROXY__SECURITY__SECRET".to_owned(),
            "a farm secret from env".to_owned(),
        )];
        let cfg = load(None, env, Vec::new()).unwrap();
        assert_eq!(
            cfg.proxy.security.secret,
            Some(locus_proxy::proxy::Secret::new("a farm secret from env"))
        );
        assert!(!format!("{cfg:?}").contains("from env"), "secret redacted");
        cfg.proxy.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let f = write("[agent]\nnode_idd = \"x\"\n");
        assert!(load(Some(f.path()), Vec::new(), Vec::new()).is_err());
        let f = write("[agent]\nnode_id = \"a:b\"\n");
        assert!(load(Some(f.path()), Vec::new(), Vec::new()).is_err());
        let f = write("[agent]\nlease = \"1s\"\nrefresh = \"2s\"\n");
        assert!(load(Some(f.path()), Vec::new(), Vec::new()).is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }

    /// A tiny temp file for config tests (no extra dependency).
    mod tempfile_lite {
        pub struct TempFile(std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "locus-cfg-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&p, text).unwrap();
                Self(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }
}
