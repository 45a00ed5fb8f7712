//! The route hook's wire forms: the request as JSON ([`HookRequest`]) or as
//! a query string (what Kamailio's `http_client` sends most easily),
//! validated into an owned request the engine can borrow from, and the
//! JSON answer ([`HookAnswer`]).

use locus_schema::NodeId;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::routing::request::{Decision, Method, RouteRequest, Source};

/// Why a hook request was refused (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The body is not the JSON of a [`HookRequest`].
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A query-string parameter could not be decoded.
    #[error("bad query parameter {0:?}")]
    Query(String),
    /// A field is missing or has an unusable value.
    #[error("field {field}: {why}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

fn field(field: &'static str, why: impl Into<String>) -> HookError {
    HookError::Field {
        field,
        why: why.into(),
    }
}

/// Where the request came from, as JSON: `"phone"`, `{"node": "fs1"}` or
/// `{"trunk": "name"}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookSource {
    /// A phone (the default).
    #[default]
    Phone,
    /// A farm node, by id.
    Node(String),
    /// A configured carrier trunk, by name.
    Trunk(String),
}

/// A route request as the hook receives it. Only `method` and
/// `ruri_domain` are required; `from_domain` and `to_domain` default to
/// `ruri_domain`, `to_user` to `ruri_user`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HookRequest {
    /// SIP method (`INVITE`, `REGISTER`, anything else).
    #[serde(default)]
    pub method: String,
    /// Request-URI user.
    #[serde(default)]
    pub ruri_user: String,
    /// Request-URI host.
    #[serde(default)]
    pub ruri_domain: String,
    /// From user.
    #[serde(default)]
    pub from_user: String,
    /// From host.
    #[serde(default)]
    pub from_domain: String,
    /// To user.
    #[serde(default)]
    pub to_user: String,
    /// To host.
    #[serde(default)]
    pub to_domain: String,
    /// Call-ID.
    #[serde(default)]
    pub call_id: String,
    /// Call-ID named by a `Replaces` header.
    #[serde(default)]
    pub replaces_call_id: Option<String>,
    /// In-dialog (To tag present).
    #[serde(default)]
    pub in_dialog: bool,
    /// Where it came from.
    #[serde(default)]
    pub source: HookSource,
}

/// A checked [`HookRequest`], owning what [`RouteRequest`] borrows.
#[derive(Debug)]
pub struct Checked {
    req: HookRequest,
    method: Method,
    node: Option<NodeId>,
}

impl HookRequest {
    /// Parses a JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, HookError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// Parses a query string (`method=INVITE&ruri_user=%2A8&...`; `source`
    /// is `phone`, `node:ID` or `trunk:NAME`; `in_dialog` is `1`/`true` or
    /// `0`/`false`). Unknown parameters are ignored.
    pub fn from_query(query: &str) -> Result<Self, HookError> {
        let mut r = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Form encoding writes spaces as '+'; no SIP token has one.
            let v = v.replace('+', " ");
            let v = percent_decode_str(&v)
                .decode_utf8()
                .map_err(|_| HookError::Query(k.to_string()))?
                .into_owned();
            match k {
                "method" => r.method = v,
                "ruri_user" => r.ruri_user = v,
                "ruri_domain" => r.ruri_domain = v,
                "from_user" => r.from_user = v,
                "from_domain" => r.from_domain = v,
                "to_user" => r.to_user = v,
                "to_domain" => r.to_domain = v,
                "call_id" => r.call_id = v,
                "replaces_call_id" => r.replaces_call_id = Some(v).filter(|v| !v.is_empty()),
                "in_dialog" => {
                    r.in_dialog = match v.as_str() {
                        "1" | "true" => true,
                        "0" | "false" | "" => false,
                        _ => return Err(field("in_dialog", "expected 0, 1, true or false")),
                    }
                }
                "source" => {
                    r.source = match v.split_once(':') {
                        _ if v.is_empty() || v == "phone" => HookSource::Phone,
                        Some(("node", id)) => HookSource::Node(id.into()),
                        Some(("trunk", name)) => HookSource::Trunk(name.into()),
                        _ => return Err(field("source", "expected phone, node:ID or trunk:NAME")),
                    }
                }
                _ => {}
            }
        }
        Ok(r)
    }

    /// Validates and fills defaults.
    pub fn check(mut self) -> Result<Checked, HookError> {
        if self.method.is_empty() || !self.method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(field("method", "expected a SIP method such as INVITE"));
        }
        let method = match self.method.to_ascii_uppercase().as_str() {
            "INVITE" => Method::Invite,
            "REGISTER" => Method::Register,
            _ => Method::Other,
        };
        if self.ruri_domain.is_empty() {
            return Err(field("ruri_domain", "required"));
        }
        if self.from_domain.is_empty() {
            self.from_domain.clone_from(&self.ruri_domain);
        }
        if self.to_domain.is_empty() {
            self.to_domain.clone_from(&self.ruri_domain);
        }
        if self.to_user.is_empty() {
            self.to_user.clone_from(&self.ruri_user);
        }
        let node = match &self.source {
            HookSource::Node(id) => {
                Some(NodeId::new(id.as_str()).map_err(|e| field("source", e.to_string()))?)
            }
            _ => None,
        };
        Ok(Checked {
            req: self,
            method,
            node,
        })
    }
}

impl Checked {
    /// The engine's view of it.
    pub fn request(&self) -> RouteRequest<'_> {
        let r = &self.req;
        let source = match (&r.source, &self.node) {
            (HookSource::Node(_), Some(id)) => Source::Node(id),
            (HookSource::Trunk(name), _) => Source::Trunk(name),
            _ => Source::Phone,
        };
        RouteRequest {
            method: self.method,
            ruri_user: &r.ruri_user,
            ruri_domain: &r.ruri_domain,
            from_user: &r.from_user,
            from_domain: &r.from_domain,
            to_user: &r.to_user,
            to_domain: &r.to_domain,
            call_id: &r.call_id,
            replaces_call_id: r.replaces_call_id.as_deref(),
            in_dialog: r.in_dialog,
            source,
        }
    }
}

/// One target of an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookTarget {
    /// Node id.
    pub node: String,
    /// The node's SIP URI (what Kamailio puts in `$du`).
    pub uri: String,
}

/// The JSON answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookAnswer {
    /// The rule that decided (`Rule::as_str`).
    pub rule: String,
    /// Why, in a few words.
    pub reason: String,
    /// Ordered failover list.
    pub targets: Vec<HookTarget>,
    /// A rule whose pattern matched but found nothing.
    pub missed: Option<String>,
    /// True when routing on a view the store could not refresh.
    pub stale: bool,
}

impl HookAnswer {
    /// The answer for `d`.
    pub fn new(d: &Decision, stale: bool) -> Self {
        Self {
            rule: d.rule.as_str().into(),
            reason: d.reason.into(),
            targets: d
                .targets
                .iter()
                .map(|n| HookTarget {
                    node: n.id.to_string(),
                    uri: n.sip_uri.clone(),
                })
                .collect(),
            missed: d.missed.map(|m| m.as_str().into()),
            stale,
        }
    }
}
