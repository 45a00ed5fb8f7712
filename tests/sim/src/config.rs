//! Simulator configuration: the identity of the simulated box, its ESL
//! listener and its users directory.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::SimError;

/// Version string reported by `api version` and HEARTBEAT (from the captures).
pub const FS_VERSION: &str = "1.10.12-release~64bit";

/// How the simulated FreeSWITCH presents itself and listens.
#[derive(Clone)]
pub struct SimConfig {
    /// ESL listen address; port 0 picks a free port.
    pub esl_addr: SocketAddr,
    /// ESL password (`auth <password>`), vanilla `ClueCon`.
    pub password: String,
    /// `FreeSWITCH-Switchname` (the node id in a farm).
    pub node_id: String,
    /// `FreeSWITCH-Hostname` and `api hostname`.
    pub hostname: String,
    /// SIP domain (`domain_name`, hash realms, conference names).
    pub domain: String,
    /// Host phones put in their From URI. In a farm this is the proxy's
    /// `host:port`, so inbound leg names carry it and `presence_id` its host
    /// instead of the domain (a trap seen in captures 20-22); with a port the
    /// box also dials users through the proxy (farm `dial-string`).
    /// `None`: the domain, phones registered at the box.
    pub from_host: Option<String>,
    /// `max-sessions`.
    pub max_sessions: u32,
    /// HEARTBEAT interval (vanilla 20 s); `None`: only on demand.
    pub heartbeat: Option<Duration>,
    /// `Core-UUID`; `None`: random.
    pub core_uuid: Option<String>,
    /// `FreeSWITCH-IPv4`.
    pub ipv4: String,
    /// `FreeSWITCH-IPv6`.
    pub ipv6: String,
    /// The users directory.
    pub directory: Directory,
    /// SIP (UDP) listen address, like a sofia profile's port; port 0 picks
    /// a free port. `None`: no SIP side.
    pub sip_addr: Option<SocketAddr>,
    /// Where the box sends calls for users (the farm's proxy, as a
    /// FreeSWITCH `dial-string` with `sip_route_uri` would). `None`: to the
    /// user's own SIP registration at this box, if any.
    pub proxy: Option<SocketAddr>,
    /// Challenge INVITEs too (sofia `auth-calls`; on by default, as in
    /// vanilla's internal profile): 407, then the directory password.
    /// Off: every INVITE is taken as authenticated, as from a proxy the
    /// box trusts (an ACL in front of `auth-calls`).
    pub auth_calls: bool,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("esl_addr", &self.esl_addr)
            .field("password", &"<redacted>")
            .field("node_id", &self.node_id)
            .field("hostname", &self.hostname)
            .field("domain", &self.domain)
            .field("from_host", &self.from_host)
            .field("max_sessions", &self.max_sessions)
            .field("heartbeat", &self.heartbeat)
            .field("core_uuid", &self.core_uuid)
            .field("users", &self.directory.users.len())
            .field("sip_addr", &self.sip_addr)
            .field("proxy", &self.proxy)
            .field("auth_calls", &self.auth_calls)
            .finish()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            esl_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            password: "ClueCon".into(),
            node_id: "vm".into(),
            hostname: "vm".into(),
            domain: "127.0.0.1".into(),
            from_host: None,
            max_sessions: 1000,
            heartbeat: Some(Duration::from_secs(20)),
            core_uuid: None,
            ipv4: "192.0.2.2".into(),
            ipv6: "fd00::2".into(),
            directory: Directory::vanilla(),
            sip_addr: None,
            proxy: None,
            auth_calls: true,
        }
    }
}

impl SimConfig {
    /// Host (and port) used in From URIs of inbound legs.
    pub fn from_host(&self) -> &str {
        self.from_host.as_deref().unwrap_or(&self.domain)
    }

    /// [`Self::from_host`] without a port.
    pub fn from_host_name(&self) -> &str {
        let h = self.from_host();
        match h.rsplit_once(':') {
            Some((name, p)) if p.parse::<u16>().is_ok() => name,
            _ => h,
        }
    }

    /// Behind a proxy (`from_host` with a port): users are dialled through
    /// it, not by their registration at this box.
    pub fn behind_proxy(&self) -> bool {
        self.from_host
            .as_deref()
            .and_then(|h| h.rsplit_once(':'))
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    }
}

/// Vanilla directory password (`default_password` in `vars.xml`).
pub const VANILLA_PASSWORD: &str = "1234";

/// One directory user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Pickup group (`callgroup` directory variable), if any.
    pub callgroup: Option<String>,
    /// SIP digest password.
    pub password: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("callgroup", &self.callgroup)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The users directory (`directory/default/*.xml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    /// User id -> entry.
    pub users: BTreeMap<String, User>,
}

impl Directory {
    /// Vanilla: users 1000-1019, all in callgroup `techsupport`.
    pub fn vanilla() -> Self {
        let users = (1000..=1019)
            .map(|n| {
                let user = User {
                    callgroup: Some("techsupport".into()),
                    password: VANILLA_PASSWORD.into(),
                };
                (n.to_string(), user)
            })
            .collect();
        Self { users }
    }

    /// A directory from `(user, callgroup)` pairs.
    pub fn from_groups<'a>(entries: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        let users = entries
            .into_iter()
            .map(|(u, g)| {
                let user = User {
                    callgroup: g.map(str::to_owned),
                    password: VANILLA_PASSWORD.into(),
                };
                (u.to_owned(), user)
            })
            .collect();
        Self { users }
    }

    /// The user's entry.
    pub fn get(&self, user: &str) -> Option<&User> {
        self.users.get(user)
    }

    /// Reads a directory file (TOML; format in `tests/sim/README.md`):
    /// returns its `domain`, if set, and the users.
    pub fn from_toml(text: &str) -> Result<(Option<String>, Self), SimError> {
        let file: DirectoryFile = toml::from_str(text)?;
        let mut users = BTreeMap::new();
        for u in file.users {
            if u.id.is_empty() || users.contains_key(&u.id) {
                return Err(SimError::DirectoryUser(u.id));
            }
            let user = User {
                callgroup: u.callgroup.filter(|g| !g.is_empty()),
                password: u.password.unwrap_or_else(|| VANILLA_PASSWORD.into()),
            };
            users.insert(u.id, user);
        }
        Ok((file.domain, Self { users }))
    }

    /// The user's callgroup (empty when none or unknown).
    pub fn callgroup(&self, user: &str) -> Option<&str> {
        self.users.get(user).and_then(|u| u.callgroup.as_deref())
    }
}

/// The directory file as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    domain: Option<String>,
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    id: String,
    password: Option<String>,
    callgroup: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanilla_directory() {
        let d = Directory::vanilla();
        assert_eq!(d.users.len(), 20);
        assert_eq!(d.callgroup("1019"), Some("techsupport"));
        assert_eq!(d.callgroup("1020"), None);
        let cfg = SimConfig::default();
        assert!(!format!("{cfg:?}").contains("ClueCon"));
        assert_eq!(cfg.from_host(), "127.0.0.1");
        assert!(cfg.auth_calls, "vanilla internal profile: auth-calls=true");
    }

    #[test]
    fn directory_file() {
        let text = r#"
            domain = "farm.test"
            [[users]]
            id = "2000"
            password = "s3cret"
            callgroup = "sales"
            [[users]]
            id = "2001"
        "#;
        let (domain, d) = Directory::from_toml(text).unwrap();
        assert_eq!(domain.as_deref(), Some("farm.test"));
        assert_eq!(d.callgroup("2000"), Some("sales"));
        assert_eq!(d.get("2000").unwrap().password, "s3cret");
        assert_eq!(d.get("2001").unwrap().password, VANILLA_PASSWORD);
        assert_eq!(d.callgroup("2001"), None);
        assert!(!format!("{d:?}").contains("s3cret"));
        assert!(Directory::from_toml("[[users]]\nid = \"1\"\n[[users]]\nid = \"1\"").is_err());
        assert!(Directory::from_toml("bogus = 1").is_err());
    }
}
