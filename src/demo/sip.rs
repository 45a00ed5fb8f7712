//! The demo's SIP part: `locus proxy` in front of the simulated boxes and
//! phones (`locus_sim::phone`) calling through it. Each step prints where
//! the proxy sent the request (the box that received it, from the sims'
//! SIP logs) and the SIP status, so the farm rules show on the wire:
//! registrations spread by hash, a `*8` lands where the group rings, a
//! valet retrieve where the call is parked, room joiners meet. The boxes
//! challenge INVITEs as vanilla does (`auth-calls`): the phones answer the
//! 407 and the proxy sends each retry to the box that challenged it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use locus_proxy::FarmSnapshot;
use locus_proxy::server::{ProxyConfig, RunningProxy};
use locus_schema::{NodeId, Store};
use locus_sim::phone::{Phone, PhoneCall};
use locus_sim::{SimHandle, VANILLA_PASSWORD};
use tokio_util::sync::CancellationToken;

use super::{DOMAIN, Farm, STEP_TIMEOUT};

/// Every phone wait (a final response, an incoming call).
const PHONE_WAIT: Duration = Duration::from_secs(5);
/// The vanilla valet lot.
const LOT: &str = "valet_parking_lot";

/// The demo's proxy: loopback UDP on a free port, HTTP for `/metrics`,
/// quick probes and sync so the story runs in seconds.
pub(super) fn proxy_config() -> ProxyConfig {
    let mut cfg = ProxyConfig::loopback(DOMAIN);
    cfg.sip.tcp = Some(Vec::new());
    cfg.core.id = "demo-proxy".into();
    cfg
}

/// Starts the proxy on the demo's store.
pub(super) async fn start_proxy(
    store: Arc<dyn Store>,
    token: CancellationToken,
) -> anyhow::Result<RunningProxy> {
    let proxy = locus_proxy::server::start(proxy_config(), store, token)
        .await
        .context("starting the proxy")?;
    let udp = proxy.udp.first().context("the proxy bound no UDP port")?;
    println!("  proxy: SIP udp {udp} (locus proxy, in-process)");
    if let Some(http) = proxy.http {
        println!("  proxy: http://{http}/metrics and http://{http}/healthz");
    }
    Ok(proxy)
}

impl Farm {
    fn proxy_udp(&self) -> anyhow::Result<SocketAddr> {
        self.proxy
            .udp
            .first()
            .copied()
            .context("the proxy bound no UDP port")
    }

    /// Polls the proxy's farm view until `ok` holds.
    async fn until_proxy(
        &self,
        what: &str,
        ok: impl Fn(&FarmSnapshot) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        while !ok(&self.proxy.sync.snapshot()) {
            if tokio::time::Instant::now() > deadline {
                bail!("the proxy's view did not show {what} within {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The box that received `method` matching `seen` (its name).
    fn landed(&self, method: &str, seen: impl Fn(&locus_sim::SipSeen) -> bool) -> String {
        self.boxes
            .iter()
            .filter(|(_, sim)| {
                sim.sip_received()
                    .iter()
                    .any(|s| s.method == method && seen(s))
            })
            .map(|(id, _)| id.as_str().to_owned())
            .collect::<Vec<_>>()
            .join("+")
    }

    fn landed_call(&self, call: &PhoneCall) -> String {
        self.landed("INVITE", |s| s.call_id == call.call_id)
    }

    async fn phone(&self, user: u32) -> anyhow::Result<Phone> {
        let p = Phone::bind(
            &user.to_string(),
            VANILLA_PASSWORD,
            DOMAIN,
            self.proxy_udp()?,
        )
        .await?
        .with_timeout(PHONE_WAIT);
        Ok(p)
    }
}

/// Calls `to` from `p` in the background (the callee's side goes first).
fn call_later(p: &Phone, to: &str) -> tokio::task::JoinHandle<anyhow::Result<PhoneCall>> {
    let (p, to) = (p.clone(), to.to_owned());
    tokio::spawn(async move { Ok(p.call(&to).await?) })
}

fn expect_ok(what: &str, call: &PhoneCall) -> anyhow::Result<()> {
    if call.status != 200 {
        bail!("{what}: SIP {} instead of 200", call.status);
    }
    Ok(())
}

/// The SIP story; returns the calls still up (hung up by the caller).
pub(super) async fn story(f: &Farm) -> anyhow::Result<Vec<PhoneCall>> {
    let ids: Vec<NodeId> = f.boxes.iter().map(|(id, _)| id.clone()).collect();
    f.until_proxy("every box routable", |snap| {
        ids.iter().all(|id| {
            snap.find(id)
                .and_then(|i| snap.node(i))
                .is_some_and(|n| n.up)
        })
    })
    .await?;
    println!(
        "\n== 09:15 phones 1010-1018 talk SIP through the proxy ({})",
        f.proxy_udp()?
    );
    let mut phones = Vec::new();
    for user in 1010..=1018 {
        let p = f.phone(user).await?;
        let status = p.register(600).await?;
        let at = f.landed("REGISTER", |s| s.from_user.as_deref() == Some(p.user()));
        println!("  REGISTER {user} -> {at}: {status} (digest challenge answered)");
        if status != 200 {
            bail!("registering {user}: SIP {status}");
        }
        phones.push(p);
    }
    let ph = |u: u32| &phones[(u - 1010) as usize];
    let mut up = Vec::new();

    let caller = call_later(ph(1010), "1011");
    let answered = ph(1011).answer_next(PHONE_WAIT).await?;
    let call = caller.await??;
    expect_ok("1010 calls 1011", &call)?;
    println!(
        "  INVITE 1010 -> 1011 -> {}, bridged back through the proxy to 1011's phone: {} (answered)",
        f.landed_call(&call),
        call.status
    );
    up.push(call);
    drop(answered);

    let caller = call_later(ph(1012), "1013");
    let ringing = ph(1013).next_call(PHONE_WAIT).await?;
    ringing.ring().await?;
    // *8 prefers the group's ringing calls; the proxy must see this one.
    f.until_proxy("1013 ringing", |snap| {
        !snap.ringing(DOMAIN, "1013").is_empty()
    })
    .await?;
    let rings_at = f.landed("INVITE", |s| s.from_user.as_deref() == Some("1012"));
    let pick = ph(1014).call("*8").await?;
    let picked = caller.await??;
    expect_ok("*8", &pick)?;
    println!(
        "  INVITE 1014 -> *8 -> {} (1012 -> 1013 rings on {rings_at}): {}; 1012 now talks to 1014, 1013 {}",
        f.landed_call(&pick),
        pick.status,
        if ringing.wait_cancelled(PHONE_WAIT).await {
            "got CANCEL"
        } else {
            "still rings"
        }
    );
    up.push(picked);

    let parker = ph(1015).call("6001").await?;
    expect_ok("valet park", &parker)?;
    println!(
        "  INVITE 1015 -> 6001 -> {}: {} (parked in {LOT} slot 6001)",
        f.landed_call(&parker),
        parker.status
    );
    f.until_proxy("the parked call", |snap| {
        !snap.slot(DOMAIN, LOT, "6001").is_empty()
    })
    .await?;
    let retriever = ph(1016).call("6001").await?;
    expect_ok("valet retrieve", &retriever)?;
    println!(
        "  INVITE 1016 -> 6001 -> {}: {} (retrieved the parked call on its box)",
        f.landed_call(&retriever),
        retriever.status
    );
    up.push(retriever);

    for user in [1017, 1018] {
        let member = ph(user).call("3001").await?;
        expect_ok("conference join", &member)?;
        println!(
            "  INVITE {user} -> 3001 -> {}: {} (conference room 3001)",
            f.landed_call(&member),
            member.status
        );
        up.push(member);
    }
    // The parker's leg went to the retriever, the ringing one to 1014.
    up.extend([pick, parker]);
    println!(
        "  every REGISTER and phone INVITE above got its box's digest challenge (401; 407 as vanilla auth-calls) \
         and went again with credentials: the proxy put {} retries back on the box that challenged them",
        f.proxy.sync.affinity().hits()
    );
    Ok(up)
}

/// Hangs the calls up from the phones' side.
pub(super) async fn hang_up(calls: Vec<PhoneCall>) {
    for mut c in calls {
        if c.is_up() {
            let _ = c.hangup().await;
        }
    }
}

/// The boxes' SIP addresses for their agents' `sip_uri`.
pub(super) fn sip_uri(sim: &SimHandle) -> anyhow::Result<String> {
    let at = sim
        .sip_addr()
        .context("the simulated box has no SIP port")?;
    Ok(format!("sip:{at}"))
}
