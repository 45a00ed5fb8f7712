//! [`StaticRouter`]: admits everything and sends every new request to a
//! fixed list of targets. For the core's tests and the benchmark; the
//! farm's router is `FarmRouter`.

use async_trait::async_trait;

use super::router::{Flow, Fork, Label, NextHop, Pass, Router, Target, Verdict};
use crate::sip::SipMessage;

/// A router with fixed targets.
#[derive(Debug, Clone)]
pub struct StaticRouter {
    targets: Vec<Target>,
    fork: Fork,
}

impl StaticRouter {
    /// Every new request goes to `targets`, serially.
    pub fn new(targets: Vec<Target>) -> StaticRouter {
        StaticRouter {
            targets,
            fork: Fork::Serial,
        }
    }

    /// The same targets, forked in parallel instead.
    pub fn parallel(mut self) -> StaticRouter {
        self.fork = Fork::Parallel;
        self
    }
}

#[async_trait]
impl Router for StaticRouter {
    fn admit(&self, _req: &mut SipMessage, _flow: &Flow) -> Result<(), (u16, &'static str)> {
        Ok(())
    }

    /// Core tests: every hop is fine.
    fn approve(
        &self,
        _req: &SipMessage,
        _flow: &Flow,
        _hop: &NextHop<'_>,
    ) -> Result<Pass, (u16, &'static str)> {
        Ok(Pass::Go)
    }

    async fn route(&self, _req: &mut SipMessage, _flow: &Flow) -> Verdict {
        if self.targets.is_empty() {
            return Verdict::Reply {
                status: 503,
                reason: "No Targets".into(),
            };
        }
        Verdict::Forward {
            targets: self.targets.clone(),
            fork: self.fork,
            label: Label::Other,
        }
    }

    async fn on_final(
        &self,
        _req: &SipMessage,
        _flow: &Flow,
        _target: &Target,
        _resp: &mut SipMessage,
    ) -> Option<Vec<Target>> {
        None
    }
}
