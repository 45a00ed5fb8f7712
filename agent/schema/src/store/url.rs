//! Store URLs: which Redis (or which Sentinel set) to talk to, parsed into
//! the redis crate's client types. Passwords never reach a log line: every
//! message uses [`redact`].
//!
//! Sentinel has no standard URL, so we define one (documented in
//! `docs/redis-schema.md`):
//! `redis+sentinel://[[user]:pass@]host[:port][,host[:port]...]/master[/db][?sentinel_username=u&sentinel_password=p]`
//! (`rediss+sentinel://` for TLS to sentinels and data nodes). The
//! userinfo authenticates to the master; sentinels often run without a
//! password or with their own, hence the query parameters.

use percent_encoding::percent_decode_str;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsMode};

use super::StoreError;

/// Sentinel's default port.
const SENTINEL_PORT: u16 = 26379;

/// Where a [`super::redis::RedisStore`] connects.
pub(crate) enum Target {
    /// One Redis (`redis://`, `rediss://`, `redis+unix://`, `unix://`).
    Direct(redis::Client),
    /// The master named in a Sentinel URL, looked up on every (re)connect.
    Sentinel(SentinelTarget),
}

/// A parsed `redis+sentinel://` URL.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SentinelTarget {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub tls: Option<TlsMode>,
}

impl SentinelTarget {
    /// A client that asks the sentinels for the current master.
    pub fn client(&self) -> redis::RedisResult<SentinelClient> {
        let addrs = self.sentinels.iter().map(|(host, port)| match self.tls {
            None => ConnectionAddr::Tcp(host.clone(), *port),
            Some(mode) => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: mode == TlsMode::Insecure,
                tls_params: None,
            },
        });
        let mut b = SentinelClientBuilder::new(addrs, &self.master, SentinelServerType::Master)?
            .set_client_to_redis_db(self.db);
        if let Some(mode) = self.tls {
            b = b.set_client_to_redis_tls_mode(mode);
        }
        if let Some(u) = &self.username {
            b = b.set_client_to_redis_username(u);
        }
        if let Some(p) = &self.password {
            b = b.set_client_to_redis_password(p);
        }
        if let Some(u) = &self.sentinel_username {
            b = b.set_client_to_sentinel_username(u);
        }
        if let Some(p) = &self.sentinel_password {
            b = b.set_client_to_sentinel_password(p);
        }
        b.build()
    }
}

/// Parses a store URL (not `memory://`, which [`super::open`] handles).
pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "redis" | "rediss" | "redis+unix" | "unix" => redis::Client::open(url)
            .map(Target::Direct)
            .map_err(|e| config(url, &e.to_string())),
        "redis+sentinel" | "rediss+sentinel" => parse_sentinel(url).map(Target::Sentinel),
        _ => Err(config(url, "unknown scheme")),
    }
}

fn config(url: &str, why: &str) -> StoreError {
    StoreError::Config(format!("{}: {why}", redact(url)))
}

fn decode(url: &str, s: &str) -> Result<String, StoreError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| config(url, "bad percent-encoding"))
}

fn parse_sentinel(url: &str) -> Result<SentinelTarget, StoreError> {
    let (scheme, rest) = url.split_once("://").unwrap_or_default();
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let tls = match (scheme, fragment) {
        ("redis+sentinel", None) => None,
        ("rediss+sentinel", None) => Some(TlsMode::Secure),
        ("rediss+sentinel", Some("insecure")) => Some(TlsMode::Insecure),
        _ => return Err(config(url, "unexpected #fragment")),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut t = SentinelTarget {
        sentinels: Vec::new(),
        master: String::new(),
        db: 0,
        username: None,
        password: None,
        sentinel_username: None,
        sentinel_password: None,
        tls,
    };
    if let Some(userinfo) = userinfo {
        let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        t.username = Some(decode(url, user)?).filter(|u| !u.is_empty());
        t.password = Some(decode(url, pass)?).filter(|p| !p.is_empty());
    }
    for host in hosts.split(',') {
        t.sentinels.push(parse_host(url, host)?);
    }
    let mut segments = path.split('/');
    t.master = decode(url, segments.next().unwrap_or_default())?;
    if t.master.is_empty() {
        return Err(config(url, "missing master name (…/mymaster)"));
    }
    if let Some(db) = segments.next().filter(|s| !s.is_empty()) {
        t.db = db.parse().map_err(|_| config(url, "db is not a number"))?;
    }
    if segments.next().is_some_and(|s| !s.is_empty()) {
        return Err(config(url, "path has more than /master/db"));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = Some(decode(url, v)?).filter(|v| !v.is_empty());
        match k {
            "sentinel_username" => t.sentinel_username = v,
            "sentinel_password" => t.sentinel_password = v,
            _ => return Err(config(url, "unknown query parameter")),
        }
    }
    Ok(t)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_host(url: &str, s: &str) -> Result<(String, u16), StoreError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, tail) = v6
            .split_once(']')
            .ok_or_else(|| config(url, "unclosed [ in host"))?;
        (h, tail.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(config(url, "empty sentinel host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| config(url, "bad sentinel port"))?,
        None => SENTINEL_PORT,
    };
    Ok((host.to_owned(), port))
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let redacted_query = redact_query(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{hosts}{redacted_query}")
        }
        None => format!("{scheme}://{authority}{redacted_query}"),
    }
}

/// Masks `*password=` (Sentinel) and `pass=` (the redis crate's unix URLs)
/// query values.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == "pass" || k.ends_with("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn sentinel(url: &str) -> SentinelTarget {
        match parse(url) {
            Ok(Target::Sentinel(t)) => t,
            Ok(Target::Direct(_)) => panic!("{url}: parsed as direct"),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn sentinel_url_with_everything() {
        let t = sentinel(
            "redis+sentinel://:p%40ss@10.0.0.1:26380,[::1],s3/mymaster/2?sentinel_password=sp",
        );
        assert_eq!(
            t.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26380),
                ("::1".to_owned(), 26379),
                ("s3".to_owned(), 26379)
            ]
        );
        assert_eq!(t.master, "mymaster");
        assert_eq!(t.db, 2);
        assert_eq!(t.username, None);
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.sentinel_password.as_deref(), Some("sp"));
        assert_eq!(t.tls, None);
        assert!(t.client().is_ok());
    }

    #[test]
    fn sentinel_tls_and_defaults() {
        let t = sentinel("rediss+sentinel://user:pw@h/m");
        assert_eq!(t.tls, Some(TlsMode::Secure));
        assert_eq!(t.username.as_deref(), Some("user"));
        assert_eq!(t.db, 0);
        let t = sentinel("rediss+sentinel://h:1/m#insecure");
        assert_eq!(t.tls, Some(TlsMode::Insecure));
    }

    #[test]
    fn bad_urls_are_config_errors_without_passwords() {
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:x/m",
            "redis+sentinel://,h/m",
            "redis+sentinel://h/m/notanumber",
            "redis+sentinel://h/m/0/extra",
            "redis+sentinel://:secret@h/m?foo=bar",
            "redis+sentinel://h/m#insecure",
            "redis+sentinel://[::1/m",
            "ftp://:secret@h/",
            "redis://:secret@h:notaport/",
        ] {
            match parse(bad) {
                Err(StoreError::Config(msg)) => assert!(!msg.contains("secret"), "{msg}"),
                Err(e) => panic!("{bad}: wrong error {e}"),
                Ok(_) => panic!("{bad}: accepted"),
            }
        }
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("redis://:pw@h:6379/0"),
            "redis://:***@h:6379/0".to_owned()
        );
        assert_eq!(redact("redis://u:pw@h/"), "redis://u:***@h/");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(
            redact("redis+sentinel://h/m?sentinel_password=x&sentinel_username=u"),
            "redis+sentinel://h/m?sentinel_password=***&sentinel_username=u"
        );
        assert_eq!(
            redact("redis+unix:///run/r.sock?db=1&pass=x"),
            "redis+unix:///run/r.sock?db=1&pass=***"
        );
    }
}
