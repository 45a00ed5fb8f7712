//! `locus demo`: two simulated FreeSWITCH boxes, their agents and a store
//! (a throwaway `redis-server` when one is installed, else memory), `locus
//! proxy` in front of them, a short scripted day (ESL scripting, then
//! phones calling through the proxy, `sip`), and the farm shown as `locus
//! inspect` shows it.

mod sip;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use locus_proxy::server::RunningProxy;
use locus_schema::testing::{RedisServer, redis_available};
use locus_schema::{FarmView, Keys, NodeId, Store, Table};
use locus_sim::{Sim, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

use crate::cli::DemoArgs;
use crate::config::{Config, redact_url};
use crate::inspect::{self, What};

/// The SIP domain of the demo farm (both boxes share it, as a real farm must).
const DOMAIN: &str = "farm.test";
/// Longest wait for the farm view to show a step.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

struct Farm {
    store: Arc<dyn Store>,
    boxes: Vec<(NodeId, SimHandle)>,
    agents: CancellationToken,
    proxy: RunningProxy,
    proxy_token: CancellationToken,
    joins: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    as_json: bool,
    _redis: Option<RedisServer>,
}

/// Runs the demo; Ctrl-C ends it early, cleanly.
pub async fn run(cfg: &Config, args: &DemoArgs, token: CancellationToken) -> anyhow::Result<()> {
    let farm = start(cfg, args).await?;
    let result = tokio::select! {
        r = script(&farm) => r,
        _ = token.cancelled() => {
            println!("\ninterrupted: stopping the demo farm");
            Ok(())
        }
    };
    farm.stop().await;
    result
}

async fn start(cfg: &Config, args: &DemoArgs) -> anyhow::Result<Farm> {
    let keys = Keys::new(cfg.redis.prefix.clone());
    let (url, redis) = match &args.redis {
        Some(url) => (url.clone(), None),
        None if redis_available() => {
            let server = RedisServer::start().context("starting a throwaway redis-server")?;
            (server.url(), Some(server))
        }
        None => ("memory://".to_owned(), None),
    };
    println!("Locus demo: store {}", redact_url(&url));
    let store = locus_schema::store::open(&url, keys, cfg.redis.timeout)
        .await
        .context("opening the store")?;
    let proxy_token = CancellationToken::new();
    let proxy = sip::start_proxy(store.clone(), proxy_token.clone()).await?;
    let proxy_udp = proxy.udp.first().copied();
    let agents = CancellationToken::new();
    let mut boxes = Vec::new();
    let mut joins = Vec::new();
    for name in ["fs1", "fs2"] {
        let sim = Sim::start(SimConfig {
            node_id: name.into(),
            hostname: name.into(),
            domain: DOMAIN.into(),
            heartbeat: Some(Duration::from_secs(2)),
            // Apart from the phones (127.0.0.1): the proxy knows a farm
            // node by its IP, any port.
            sip_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 2], 0))),
            proxy: proxy_udp,
            ..SimConfig::default()
        })
        .await
        .with_context(|| format!("starting simulated box {name}"))?;
        let id = NodeId::new(name)?;
        let mut agent = cfg.agent.clone();
        agent.node_id = id.clone();
        agent.sip_uri = sip::sip_uri(&sim)?;
        agent.esl.addr = sim.esl_addr().to_string();
        agent.esl.password = "ClueCon".into();
        agent.http = None;
        agent.lease = Duration::from_secs(3);
        agent.refresh = Duration::from_millis(500);
        println!(
            "  box {name}: ESL {}, SIP {} (simulated FreeSWITCH), agent publishing as node {name}",
            sim.esl_addr(),
            agent.sip_uri
        );
        joins.push(tokio::spawn(locus_agent::run(
            agent,
            store.clone(),
            agents.child_token(),
        )));
        boxes.push((id, sim));
    }
    Ok(Farm {
        store,
        boxes,
        agents,
        proxy,
        proxy_token,
        joins,
        as_json: args.json,
        _redis: redis,
    })
}

impl Farm {
    fn sim(&self, i: usize) -> &SimHandle {
        &self.boxes[i].1
    }

    /// Polls the store until `ok` holds for the farm view.
    async fn until(&self, what: &str, ok: impl Fn(&FarmView) -> bool) -> anyhow::Result<FarmView> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if let Ok(farm) = self.store.read_farm().await
                && ok(&farm)
            {
                return Ok(farm);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the farm view did not show {what} within {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn show(&self, farm: &FarmView, whats: &[What]) {
        for w in whats {
            println!(
                "\n$ locus inspect {}{}",
                if self.as_json { "--json " } else { "" },
                format!("{w:?}").to_lowercase()
            );
            print!(
                "{}",
                inspect::render(farm, *w, self.as_json, locus_agent::now_ms())
            );
        }
    }

    async fn stop(self) {
        self.agents.cancel();
        for j in self.joins {
            let _ = tokio::time::timeout(Duration::from_secs(5), j).await;
        }
        self.proxy_token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.proxy.closed()).await;
        for (_, sim) in &self.boxes {
            sim.stop().await;
        }
    }
}

fn count(farm: &FarmView, node: &str, t: Table) -> usize {
    farm.nodes
        .iter()
        .filter(|(id, n)| id.as_str() == node && n.live)
        .map(|(_, n)| n.image.table(t).count())
        .sum()
}

fn has(farm: &FarmView, node: &str, t: Table, key: &str) -> bool {
    farm.nodes
        .iter()
        .any(|(id, n)| id.as_str() == node && n.live && n.image.table(t).any(|(k, _)| k == key))
}

fn idle(farm: &FarmView) -> bool {
    farm.nodes
        .values()
        .filter(|n| n.live)
        .all(|n| n.image.table(Table::Calls).count() == 0)
}

async fn script(f: &Farm) -> anyhow::Result<()> {
    let (fs1, fs2) = (f.sim(0), f.sim(1));
    f.until("both nodes live with ESL up", |farm| {
        farm.nodes
            .values()
            .filter(|n| n.live && n.image.status.esl == locus_schema::EslLink::Up)
            .count()
            == 2
    })
    .await?;

    println!(
        "\n== 08:55 phones register (1000-1004 on fs1, 1005-1009 on fs2; call group techsupport)"
    );
    for u in 1000..1010 {
        let sim = if u < 1005 { fs1 } else { fs2 };
        sim.register(&u.to_string()).await?;
    }
    let farm = f
        .until("group membership", |farm| farm.members().len() >= 10)
        .await?;
    f.show(&farm, &[What::Members]);

    println!("\n== 09:00 a day starts");
    println!("  fs1: 1000 calls 1001, which rings (pickup group techsupport)");
    let ringing = fs1.call("1000", "1001").await?;
    println!("  fs2: 1005 calls 1006, who answers");
    let talk = fs2.call("1005", "1006").await?;
    fs2.answer(&talk).await?;
    println!("  fs2: 1007 parks a call in valet slot 6001");
    let parked = fs2.valet_park("1007", "valet_parking_lot", "6001").await?;
    println!("  fs1: 1002 and 1003 join conference room 3000");
    let m1 = fs1.conference_join("1002", "3000").await?;
    let m2 = fs1.conference_join("1003", "3000").await?;
    println!("  fs2: 1008 waits in call-center queue support@default");
    let queued = fs2.callcenter_enter("1008", "support@default").await?;
    let farm = f
        .until("the morning's calls", |farm| {
            has(farm, "fs1", Table::Ringing, &format!("{DOMAIN}/1001"))
                && count(farm, "fs2", Table::Lots) == 1
                && has(farm, "fs1", Table::Rooms, &format!("{DOMAIN}/3000"))
                && count(farm, "fs2", Table::Queues) == 1
        })
        .await?;
    f.show(
        &farm,
        &[
            What::Nodes,
            What::Calls,
            What::Ringing,
            What::Groups,
            What::Lots,
            What::Rooms,
            What::Queues,
        ],
    );

    println!(
        "\n== 09:05 1004 dials *8 on fs1, the box holding the group's ringing call, and picks it up"
    );
    let picker = fs1.intercept_group("1004", "techsupport").await?;
    let farm = f
        .until("the pickup", |farm| count(farm, "fs1", Table::Ringing) == 0)
        .await?;
    f.show(&farm, &[What::Groups, What::Calls]);

    println!("\n== 09:10 everybody hangs up; 1009 retrieves the parked call first");
    let retrieved = fs2
        .valet_retrieve("1009", "valet_parking_lot", "6001")
        .await?;
    for c in [&picker, &talk, &queued, &retrieved] {
        let sim = if fs1.calls().iter().any(|x| &x.id == c) {
            fs1
        } else {
            fs2
        };
        sim.hangup(c).await.ok();
    }
    for m in [&m1, &m2] {
        fs1.conference_leave(m).await?;
    }
    let _ = (ringing, parked);
    f.until("an idle farm", idle).await?;

    let calls = sip::story(f).await?;
    let room = format!("{DOMAIN}/3001");
    let farm = f
        .until("the SIP calls", |farm| {
            // Five calls: the bridged one, the picked-up one, the retrieved
            // one, and two room members (the room's value is its size).
            let calls: usize = ["fs1", "fs2"]
                .iter()
                .map(|n| count(farm, n, Table::Calls))
                .sum();
            let members = farm.nodes.values().filter(|n| n.live).any(|n| {
                n.image
                    .table(Table::Rooms)
                    .any(|(k, v)| k == &room && v == "2")
            });
            calls == 5 && members
        })
        .await?;
    f.show(&farm, &[What::Nodes, What::Calls, What::Rooms]);
    println!("\n== 09:20 the phones hang up (BYE through the proxy)");
    sip::hang_up(calls).await;
    let farm = f.until("an idle farm", idle).await?;
    f.show(&farm, &[What::Nodes, What::Calls]);
    println!(
        "\nDemo done: every change above went FreeSWITCH (simulated) -> ESL -> agent -> store -> inspect,\nand every SIP request phone -> locus proxy -> the box the farm view chose."
    );
    Ok(())
}
