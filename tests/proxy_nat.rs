//! Phones behind a real NAT (issue "Tests with a real NAT"): sipp phones
//! in a private LAN namespace reach the farm namespace (proxy, simulated
//! box, Redis) only through a namespace that masquerades with random
//! ports, as carrier-grade NAT does, and lets back in only what answers a
//! live conntrack entry (`support::nat`). Each test shows the proxy
//! keeping a phone reachable through that pinhole: its binding names the
//! NAT's public source, calls and every in-dialog request of the box cross
//! the pinhole by the flow in our signed Record-Route, a phone that moves
//! is reached at its new port, forged flow tokens are refused, and a
//! private Contact is never dialled. The same without a NAT, on loopback:
//! `proxy_nat_dialog.rs`.
//!
//! The tests skip (pass, printing `SKIP: ...`) where namespaces cannot be
//! made (not root, no `ip`/`nft`/`conntrack`); CI runs them as root.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::time::Duration;

use locus_proxy::proxy::{Flow, FlowKeys, Secret};
use locus_proxy::sip::Transport;
use locus_schema::Binding;
use support::nat::NatLab;
use support::sipfarm::{SipFarm, start_sip_farm};
use support::sipp::{Sipp, SippChild, SippResult};
use support::{BOX_IP, DOMAIN, WAIT, wait_until};
use tokio::time::Instant;

/// The farm secret the proxy signs flow tokens with.
const SECRET: &str = "nat lab farm secret";
/// The phone's SIP port on its LAN (the lab's namespace is its alone).
const PHONE_PORT: u16 = 5062;

/// A test's body, given the lab and the farm.
type Body = Box<dyn for<'a> FnOnce(&'a NatLab, &'a SipFarm) -> LocalBoxFuture<'a> + Send>;
type LocalBoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Builds a lab (or skips, see `NatLab::start`), starts the farm in it,
/// runs `body`, stops the proxy; the lab goes away with the test,
/// panicked or not.
fn nat_test(body: Body) {
    nat_test_with(|_| {}, body);
}

/// [`nat_test`] with `setup` shaping the lab first.
fn nat_test_with(setup: impl FnOnce(&NatLab), body: Body) {
    let Some(lab) = NatLab::start() else { return };
    setup(&lab);
    lab.block_on_farm(|| async {
        // Boxed: the start-up future is deep for rustc's layout queries.
        let farm = Box::pin(farm(&lab)).await;
        body(&lab, &farm).await;
        farm.stop_proxy().await;
    });
}

/// Redis, the proxy listening on the farm's public address, one box.
async fn farm(lab: &NatLab) -> SipFarm {
    let at = SocketAddr::new(lab.farm_ip(), 0);
    start_sip_farm(1, |cfg| {
        cfg.sip.udp = vec![at];
        cfg.sip.tcp = Some(vec![at]);
        cfg.security.secret = Some(Secret::new(SECRET));
    })
    .await
}

/// The phone's private address on its LAN.
fn private(lab: &NatLab) -> SocketAddr {
    SocketAddr::new(lab.phone_ip(), PHONE_PORT)
}

/// Phone 1001 in the LAN namespace running `scenario` against the proxy.
fn phone(lab: &NatLab, farm: &SipFarm, scenario: &'static str) -> Sipp {
    Sipp::new(scenario, farm.proxy_udp())
        .phone("1001", DOMAIN)
        .key("expires", "300")
        .in_netns(&lab.phone_ns(), private(lab))
}

/// A phone that registers, then answers calls with `ooc` for `hold`.
fn answering_phone(lab: &NatLab, farm: &SipFarm, ooc: &str, hold: Duration) -> Sipp {
    let mut p = phone(lab, farm, "phone_register_answer.xml").ooc(ooc);
    p.hold_ms = u32::try_from(hold.as_millis()).unwrap();
    p.limit_time = hold + Duration::from_secs(30);
    p
}

/// Phone 1001 registers (a run that ends there); the NAT's public
/// address for it.
async fn register(lab: &NatLab, farm: &SipFarm) -> SocketAddr {
    let mut reg = phone(lab, farm, "phone_register_answer.xml");
    reg.hold_ms = 0;
    let res = reg.run().await;
    assert_eq!(res.code, Some(0), "register: {}", res.log);
    public(lab, farm)
}

/// Box fs1 calls 1001, whose `callee` answers; the box ACKs and hangs up
/// at once, and the phone saw it all.
async fn box_calls(farm: &SipFarm, callee: SippChild) {
    let call_id = farm.sim("fs1").sip_call("1000", "1001").await.unwrap();
    answered(farm, &call_id).await;
    let res = callee.finish(Duration::from_secs(40)).await;
    assert_answered(&res, &call_id);
}

/// Waits (bounded) for the final response to fs1's INVITE `call_id`: 200.
async fn answered(farm: &SipFarm, call_id: &str) {
    let fs1 = farm.sim("fs1");
    wait_until("the phone's answer", WAIT, || {
        fs1.sip_final(call_id).is_some()
    })
    .await;
    assert_eq!(fs1.sip_final(call_id), Some(200));
}

/// The phone's run ended well, and its call `call_id` got as far as the
/// 200 to the box's BYE (so the box's ACK, and re-INVITEs, came before).
fn assert_answered(res: &SippResult, call_id: &str) {
    assert_eq!(res.code, Some(0), "phone: {}", res.log);
    assert!(
        res.log.contains(&format!("call {call_id}: BYE answered")),
        "the box's requests never all reached the phone: {}",
        res.log
    );
}

/// Waits (bounded) for 1001's binding in Redis to satisfy `ok`.
async fn binding(farm: &SipFarm, ok: impl Fn(&Binding) -> bool) -> Binding {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = farm.store.bindings(DOMAIN, "1001").await.unwrap();
        if let Some(b) = found.iter().find(|b| ok(b)) {
            return b.clone();
        }
        assert!(Instant::now() < deadline, "no such binding: {found:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The NAT's public address for the phone's flow to the proxy.
fn public(lab: &NatLab, farm: &SipFarm) -> SocketAddr {
    lab.public_of(private(lab), farm.proxy_udp())
        .expect("the NAT maps the phone's flow to the proxy")
}

/// a. The binding names what the NAT made of the phone: the public
/// address and the random port, `nat: true`; the private Contact is kept
/// as the phone wrote it.
#[test]
fn a_phone_registers_through_the_nat() {
    nat_test(Box::new(|lab, farm| {
        Box::pin(async move {
            let public = register(lab, farm).await;
            assert_eq!(public.ip(), lab.nat_public_ip());
            let b = binding(farm, |_| true).await;
            assert!(b.nat, "{b:?}");
            assert_eq!(b.received, public.to_string(), "{b:?}");
            assert!(
                b.contact.contains(&private(lab).to_string()),
                "the Contact is the phone's own: {b:?}"
            );
        })
    }));
}

/// b. The box calls the phone: the INVITE crosses the pinhole, the phone
/// answers, and the box's ACK and BYE (whose Request-URI is the private
/// Contact) reach it by the flow in our Record-Route.
#[test]
fn a_box_call_crosses_the_pinhole_with_its_ack_and_bye() {
    nat_test(Box::new(|lab, farm| {
        Box::pin(async move {
            let callee = answering_phone(lab, farm, "phone_answer_ooc.xml", Duration::from_secs(6))
                .spawn()
                .await;
            binding(farm, |_| true).await;
            box_calls(farm, callee).await;
            assert_eq!(farm.proxy.stats.gate_refusals(), 0);
        })
    }));
}

/// c. A 60 s call with the NAT's UDP timeout at 20 s: the box re-INVITEs
/// the phone twice, the phone re-INVITEs the box once, the box hangs up;
/// requests 15 s apart keep the one pinhole open all along (same public
/// port at the start and the end).
#[test]
fn a_long_call_with_reinvites_both_ways_lives_on_one_pinhole() {
    nat_test_with(
        |lab| {
            lab.set_udp_timeout(20);
        },
        Box::new(|lab, farm| {
            Box::pin(async move {
                let step = Duration::from_secs(15);
                let callee = answering_phone(
                    lab,
                    farm,
                    "phone_answer_reinvite.xml",
                    Duration::from_secs(75),
                )
                .spawn()
                .await;
                let b = binding(farm, |_| true).await;
                let (public, ttl) = lab.pinhole(private(lab), farm.proxy_udp()).unwrap();
                assert_eq!(b.received, public.to_string());
                assert!(ttl <= 20, "the short UDP timeout is in force: {ttl} s");

                let fs1 = farm.sim("fs1");
                let call_id = fs1.sip_call_held("1000", "1001").await.unwrap();
                answered(farm, &call_id).await;
                let up = Instant::now();

                // The box re-INVITEs at 15 s; the phone (its scenario) 15 s later.
                tokio::time::sleep_until(up + step).await;
                box_reinvites(farm, &call_id).await;
                wait_until("the phone's re-INVITE", step + WAIT, || {
                    fs1.sip_received()
                        .iter()
                        .any(|s| s.call_id == call_id && s.method == "INVITE")
                })
                .await;
                // The box again at 45 s, and its BYE at 60 s.
                tokio::time::sleep_until(up + 3 * step).await;
                box_reinvites(farm, &call_id).await;
                tokio::time::sleep_until(up + 4 * step).await;
                assert_eq!(lab.public_of(private(lab), farm.proxy_udp()), Some(public));
                assert!(fs1.sip_hangup(&call_id).await);
                let res = callee.finish(Duration::from_secs(60)).await;
                assert_answered(&res, &call_id);
                let acks = fs1
                    .sip_received()
                    .iter()
                    .filter(|s| s.call_id == call_id && s.method == "ACK")
                    .count();
                assert_eq!(acks, 1, "the phone ACKed the box's 200 to its re-INVITE");
                assert_eq!(farm.proxy.stats.gate_refusals(), 0);
            })
        }),
    );
}

/// The box re-INVITEs the phone in `call_id`; the phone answers 200.
async fn box_reinvites(farm: &SipFarm, call_id: &str) {
    let fs1 = farm.sim("fs1");
    // Sending it clears the last one's status.
    assert!(fs1.sip_reinvite(call_id).await, "no such dialog");
    wait_until("the box's re-INVITE answered", WAIT, || {
        fs1.sip_reinvite_status(call_id).is_some()
    })
    .await;
    assert_eq!(fs1.sip_reinvite_status(call_id), Some(200));
}

/// d. The NAT forgets the phone (conntrack flushed: a reboot, a move);
/// its next REGISTER comes from a new public port, and the box's call
/// reaches it there.
#[test]
fn a_phone_that_moves_is_reached_at_its_new_port() {
    nat_test(Box::new(|lab, farm| {
        Box::pin(async move {
            let before = register(lab, farm).await;
            binding(farm, |b| b.received == before.to_string()).await;

            lab.flush_conntrack();
            assert_eq!(lab.public_of(private(lab), farm.proxy_udp()), None);
            let callee = answering_phone(lab, farm, "phone_answer_ooc.xml", Duration::from_secs(6))
                .spawn()
                .await;
            let b = binding(farm, |b| b.received != before.to_string()).await;
            let after = public(lab, farm);
            assert_ne!(after, before, "the NAT chose a new port");
            assert_eq!(b.received, after.to_string());
            let all = farm.store.bindings(DOMAIN, "1001").await.unwrap();
            assert_eq!(all.len(), 1, "the old binding was replaced: {all:?}");
            box_calls(farm, callee).await;
        })
    }));
}

/// e. From behind the NAT, an in-dialog request along a Route of ours
/// whose flow token names another phone behind the same NAT (another
/// public port), with a tampered signature or signed with another
/// secret, gets 403 and is counted as forged. (A token naming the sender
/// itself is its own dialog's way back, not a hop.)
#[test]
fn a_forged_flow_token_from_behind_the_nat_gets_403() {
    nat_test(Box::new(|lab, farm| {
        Box::pin(async move {
            let own = register(lab, farm).await;
            let neighbour = if own.port() == 40000 { 40001 } else { 40000 };
            let flow = Flow {
                source: SocketAddr::new(own.ip(), neighbour),
                transport: Transport::Udp,
                conn: None,
                local: farm.proxy_udp(),
            };
            let good = FlowKeys::new(SECRET.as_bytes(), None).token(&flow);
            let (body, sig) = good.rsplit_once('~').unwrap();
            let flipped = if sig.starts_with('0') { "1" } else { "0" };
            let tampered = format!("{body}~{flipped}{}", &sig[1..]);
            let stranger = FlowKeys::new(b"another farm's secret", None).token(&flow);
            let before = farm.proxy.stats.forged_routes();
            for token in [tampered, stranger] {
                let mut forged = phone(lab, farm, "phone_forged_route.xml").key("flow", &token);
                forged.service = "1002".into();
                let res = forged.run().await;
                assert_eq!(res.code, Some(0), "token {token}: {}", res.log);
            }
            assert_eq!(farm.proxy.stats.forged_routes() - before, 2);
        })
    }));
}

/// f. The farm's own network has a host at the phone's private address
/// and port: neither the call to the phone (its ACK and BYE carry the
/// private Contact as Request-URI) nor a box's INVITE aimed at that
/// address straight (480) ever reaches it.
#[test]
fn a_private_contact_is_never_dialled() {
    nat_test_with(
        |lab| {
            lab.add_farm_address(lab.phone_ip());
        },
        Box::new(|lab, farm| {
            Box::pin(async move {
                let decoy = UdpSocket::bind(private(lab)).unwrap();
                decoy.set_nonblocking(true).unwrap();
                let callee =
                    answering_phone(lab, farm, "phone_answer_ooc.xml", Duration::from_secs(6))
                        .spawn()
                        .await;
                binding(farm, |_| true).await;
                box_calls(farm, callee).await;

                let mut dial = Sipp::new("box_dial_private.xml", farm.proxy_udp())
                    .key("user", "1000")
                    .key("domain", DOMAIN)
                    .key("private", &private(lab).to_string());
                dial.service = "1001".into();
                dial.limit_time = Duration::from_secs(10);
                let box_ip = BOX_IP.parse().unwrap();
                dial.local = SocketAddr::new(
                    box_ip,
                    locus_schema::testing::ports::free_port(box_ip).unwrap(),
                );
                let res = dial.run().await;
                assert_eq!(res.code, Some(0), "box: {}", res.log);

                let mut buf = [0u8; 2048];
                let got = decoy
                    .recv_from(&mut buf)
                    .ok()
                    .map(|(n, from)| format!("{from}: {}", String::from_utf8_lossy(&buf[..n])));
                assert_eq!(got, None, "the private address was dialled");
            })
        }),
    );
}

/// A phone whose Via asks for no rport (RFC 3581) behind a NAT that
/// changes ports: its responses go where its requests came from, the NAT
/// mapping, not to the Via's port, or it never hears back.
#[test]
fn a_phone_without_rport_gets_its_responses_through_the_nat() {
    nat_test(Box::new(|lab, farm| {
        Box::pin(async move {
            let res = phone(lab, farm, "phone_register.xml").run().await;
            assert_eq!(res.code, Some(0), "register: {}", res.log);
            let b = binding(farm, |_| true).await;
            assert_eq!(b.received, public(lab, farm).to_string());
            assert!(b.nat, "{b:?}");
        })
    }));
}
