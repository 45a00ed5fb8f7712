//! Unregister requests from the proxies (`{id}:unreg`,
//! `docs/redis-schema.md`): a phone unregistered through another box while
//! this box still holds its registration (left from before a failover).
//! Every `refresh` the session takes this node's requests and runs
//! `sofia profile <profile> flush_inbound_reg <user>@<domain>` on the box;
//! FreeSWITCH then fires `sofia::expire`, which drops the claim.

use locus_esl::EslHandle;
use locus_schema::{NodeId, NodeStore, UnregRequest};
use tracing::{debug, info, warn};

/// Requests taken per pass.
const BATCH: usize = 64;

/// The api command for `req`, or `None` when a field could end or extend
/// the command line (the request came through Redis: never trust it).
pub fn command(req: &UnregRequest) -> Option<String> {
    let plain = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b) || extra.contains(&b))
    };
    let (user, domain) = req.target.split_once('@')?;
    let ok = plain(&req.profile, b"")
        && plain(user, b"!~*'()+%")
        && plain(domain, b"")
        && !req.target.eq_ignore_ascii_case("reboot");
    ok.then(|| {
        format!(
            "sofia profile {} flush_inbound_reg {}",
            req.profile, req.target
        )
    })
}

/// Takes this node's queued requests and runs them on the box.
pub async fn drain(store: &dyn NodeStore, node: &NodeId, handle: &EslHandle) {
    let reqs = match store.take_unregisters(node, BATCH).await {
        Ok(r) => r,
        Err(e) => {
            debug!(error = %e, "cannot read unregister requests");
            return;
        }
    };
    for req in reqs {
        let Some(cmd) = command(&req) else {
            warn!(
                profile = req.profile,
                target = req.target,
                "unfit unregister request dropped"
            );
            continue;
        };
        match handle.api(&cmd).await {
            Ok(reply) => {
                info!(target = req.target, reply = %reply.trim(), "registration flushed at a proxy's request")
            }
            Err(e) => warn!(target = req.target, error = %e, "flush_inbound_reg failed"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn req(profile: &str, target: &str) -> UnregRequest {
        UnregRequest {
            profile: profile.into(),
            target: target.into(),
        }
    }

    #[test]
    fn commands_are_built_only_from_plain_fields() {
        assert_eq!(
            command(&req("internal", "1009@farm.test")).as_deref(),
            Some("sofia profile internal flush_inbound_reg 1009@farm.test")
        );
        for (p, t) in [
            ("internal", "1009@farm.test\n\napi fsctl shutdown"),
            ("internal extra", "1009@farm.test"),
            ("internal", "reboot"),
            ("internal", "farm.test"),
            ("internal", "1009@farm.test reboot"),
            ("", "1009@farm.test"),
            ("internal", "a@b@c"),
        ] {
            assert_eq!(command(&req(p, t)), None, "{p:?} {t:?}");
        }
    }
}
