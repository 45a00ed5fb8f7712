//! Registration through `locus proxy` with real sipp phones, real Redis and
//! simulated boxes: the box's digest challenge and 200 relayed, the binding
//! mirrored into `reg:` on the box the AOR hashes to, a wrong password
//! refused by the box, unregistration; and a call bridged by one box
//! reaching a phone registered through another (rule 7).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use locus_schema::NodeId;
use support::regtrust::{RawSip, request, udp_bound};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::sipp::free_udp_port;
use support::sipp::{Sipp, sipp_bin};
use support::{DOMAIN, WAIT, http_get};

/// The node the proxy's engine places a REGISTER for `user` on (rule 2),
/// asked through its HTTP route hook.
async fn register_placement(farm: &SipFarm, user: &str) -> String {
    let http = farm.proxy.http.unwrap();
    let path =
        format!("/route?method=REGISTER&ruri_domain={DOMAIN}&to_user={user}&from_user={user}");
    let (code, body) = http_get(http, &path).await.unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["targets"][0]["node"].as_str().unwrap().to_owned()
}

/// A phone `user` with password `pw` on `local` registering for `expires` s.
fn register(
    farm: &SipFarm,
    scenario: &'static str,
    (user, pw): (&str, &str),
    expires: u32,
    local: SocketAddr,
) -> Sipp {
    let mut run = Sipp::new(scenario, farm.proxy_udp())
        .phone(user, DOMAIN)
        .key("expires", &expires.to_string());
    run.local = local;
    run.auth(user, pw)
}

/// Boxes that saw a REGISTER for `user` (To user), by name.
fn register_seen(farm: &SipFarm, user: &str) -> Vec<String> {
    farm.nodes
        .iter()
        .filter(|n| {
            n.sim.sip_received().iter().any(|s| {
                s.method == "REGISTER"
                    && s.header("To")
                        .is_some_and(|t| t.contains(&format!("sip:{user}@")))
            })
        })
        .map(|n| n.id.as_str().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_is_relayed_mirrored_refused_and_removed() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    let home = register_placement(&farm, "1001").await;
    let local: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();

    // 401 from the box relayed with its challenge (sipp answers it), 200 relayed.
    let res = register(&farm, "phone_register.xml", ("1001", "1234"), 300, local)
        .run()
        .await;
    assert_eq!(res.code, Some(0), "sipp: {}", res.log);
    // Where the phone really was (another port if that one was taken).
    let local = res.local;
    assert_eq!(register_seen(&farm, "1001"), vec![home.clone()]);
    let at_box = farm
        .sim(&home)
        .sip_binding("1001")
        .expect("the box holds the binding");
    assert_eq!(at_box.contact, format!("sip:1001@{local};transport=UDP"));
    let path = at_box.path.first().expect("our Path on the REGISTER");
    assert!(
        path.starts_with(&format!("<sip:{};lr;flow=u~{local}~0", farm.proxy_udp())),
        "{path}"
    );
    // The challenge was the box's own, relayed untouched: the box saw
    // exactly two REGISTERs (challenge, then the credentials for its realm).
    let seen = farm.sim(&home).sip_received();
    let regs: Vec<_> = seen.iter().filter(|s| s.method == "REGISTER").collect();
    assert_eq!(regs.len(), 2);
    assert!(
        regs[1]
            .header("Authorization")
            .is_some_and(|a| a.contains(&format!("realm=\"{DOMAIN}\"")))
    );

    // The challenge as a phone sees it: the box's own 401 (its User-Agent
    // and digest realm), only the phone's Via left, nothing mirrored for it.
    let raw = RawSip::bind("127.0.0.1").await;
    let aor = format!("sip:1002@{DOMAIN}");
    let req = request(
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        raw.local,
        &aor,
        &aor,
        "Expires: 60\r\n",
    );
    let (status, text) = raw
        .final_response(farm.proxy_udp(), &req, WAIT)
        .await
        .expect("401");
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("\r\nUser-Agent: FreeSWITCH-mod_sofia"),
        "{text}"
    );
    assert!(
        text.contains(&format!("WWW-Authenticate: Digest realm=\"{DOMAIN}\"")),
        "{text}"
    );
    assert_eq!(text.matches("\r\nVia:").count(), 1, "{text}");
    assert!(
        farm.store
            .bindings(DOMAIN, "1002")
            .await
            .unwrap()
            .is_empty()
    );

    let bindings = farm.store.bindings(DOMAIN, "1001").await.unwrap();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    let b = &bindings[0];
    assert_eq!(b.proxy, "proxy1");
    assert_eq!(b.received, local.to_string());
    assert_eq!(b.transport, "udp");
    // Signed with the farm secret (a random one here): `u~ADDR~0~SIG`.
    assert!(b.flow.starts_with(&format!("u~{local}~0~")), "{}", b.flow);
    assert_eq!(b.socket, format!("sip:{}", farm.proxy_udp()));
    assert_eq!(b.node, Some(NodeId::new(home.clone()).unwrap()));
    assert_eq!(b.contact, at_box.contact);
    assert_eq!(b.user_agent.as_deref(), Some("locus-test-phone"));

    // A wrong password: the box's 403 reaches the phone; nothing mirrored.
    let other: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let res = register(
        &farm,
        "phone_register_denied.xml",
        ("1001", "wrong"),
        300,
        other,
    )
    .run()
    .await;
    assert_eq!(res.code, Some(0), "sipp (expects 403): {}", res.log);
    let bindings = farm.store.bindings(DOMAIN, "1001").await.unwrap();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0].received, local.to_string());

    // Expires 0 from the same contact: gone at the box and in Redis.
    let res = register(&farm, "phone_register.xml", ("1001", "1234"), 0, local)
        .run()
        .await;
    assert_eq!(res.code, Some(0), "sipp: {}", res.log);
    assert!(farm.sim(&home).sip_binding("1001").is_none());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = farm.store.bindings(DOMAIN, "1001").await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "binding not removed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_bridged_by_one_box_reaches_a_phone_registered_through_another() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    // sipp cannot answer a new Call-ID in the scenario that registered,
    // so the phone registers, then answers in a second run on its port.
    let phone: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let res = register(&farm, "phone_register.xml", ("1001", "1234"), 300, phone)
        .run()
        .await;
    assert_eq!(res.code, Some(0), "register: {}", res.log);
    let phone = res.local;
    let mut answer = Sipp::new("uas_answer.xml", farm.proxy_udp());
    answer.local = phone;
    answer.service = "1001".into();
    answer.limit_time = Duration::from_secs(40);
    // Returns once sipp holds the port.
    let callee = answer.spawn().await;
    assert_eq!(
        callee.local, phone,
        "the registered port was taken meanwhile"
    );
    assert!(udp_bound(phone));
    let home = farm.home_of("1001");
    let deadline = tokio::time::Instant::now() + WAIT;
    while farm
        .store
        .bindings(DOMAIN, "1001")
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "1001 never mirrored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Pin the domain (a `tenant:` pin in the store) to another box, so the
    // caller's INVITE lands there and that box bridges through the proxy.
    let bridger = farm.pin_tenant_away_from(&home).await;

    let mut caller = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    caller.service = "1001".into();
    caller.hold_ms = 300;
    let res = caller.run().await;
    let cres = callee.finish(WAIT).await;
    assert_eq!(
        res.code,
        Some(0),
        "caller: {} callee: {}",
        res.log,
        cres.log
    );
    assert_eq!(cres.code, Some(0), "callee: {}", cres.log);

    // The phone's INVITE reached the bridging box only; that box sent its
    // own INVITE for 1001 to the proxy, which the proxy answered from the
    // phone (the home box never saw a call).
    let invites = farm.calls_for("1001");
    assert_eq!(farm.misrouted_retries(), []);
    let on = |id: &NodeId| {
        invites
            .iter()
            .find(|(n, _)| n == id.as_str())
            .map(|(_, c)| *c)
    };
    assert_eq!(on(&bridger), Some(1), "{invites:?}");
    assert_eq!(on(&home), Some(0), "{invites:?}");
    let b = farm.sim(bridger.as_str());
    let from_phone = b
        .sip_received()
        .into_iter()
        .find(|s| s.method == "INVITE" && s.ruri_user.as_deref() == Some("1001"))
        .unwrap();
    assert_eq!(from_phone.from_user.as_deref(), Some("1000"));
    farm.stop_proxy().await;
}
