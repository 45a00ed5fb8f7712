//! REGISTER with digest auth: 401 challenge, 200 with the directory
//! password (with and without qop) and the ESL `sofia::register` carrying
//! the real contact and source, 403 with a wrong password, Path kept,
//! `Expires: 0` unregistering. INVITE with vanilla `auth-calls`: the 407
//! as FreeSWITCH sends it, and another box's nonce refused as stale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sip_support;
#[allow(unused_imports)]
mod support;

use locus_esl::Event;
use locus_proxy::sip::SipMessage;
use sip_support::{Peer, authorization, param, request, sip_sim};
use support::Client;

fn register(p: &Peer, call_id: &str, cseq: u32, expires: u32) -> SipMessage {
    let mut r = request("REGISTER", "sip:127.0.0.1", "1000", p.addr, call_id, cseq);
    r.headers.set("To", "<sip:1000@127.0.0.1>");
    r.headers
        .set("Contact", &format!("<sip:1000@{};ob>", p.addr));
    r.headers.push("Expires", &expires.to_string());
    r
}

async fn challenge(p: &Peer, to: std::net::SocketAddr, req: &SipMessage) -> String {
    p.send(req, to).await;
    let r = p.expect_status(401).await;
    r.headers.get("WWW-Authenticate").unwrap().to_owned()
}

fn is(ev: &Event, sub: &str) -> bool {
    ev.get("Event-Subclass") == Some(sub)
}

#[tokio::test]
async fn digest_register_runs_the_register_script() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let mut esl = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let phone = Peer::bind().await;

    let mut req = register(&phone, "reg1", 1, 600);
    let ch = challenge(&phone, to, &req).await;
    assert!(ch.starts_with("Digest "), "{ch}");
    assert_eq!(param(&ch, "realm").as_deref(), Some("127.0.0.1"));
    assert_eq!(param(&ch, "algorithm").as_deref(), Some("MD5"));
    assert_eq!(param(&ch, "qop").as_deref(), Some("auth"));
    assert!(sim.sip_binding("1000").is_none());

    req.headers.set("CSeq", "2 REGISTER");
    req.headers.push("Path", "<sip:10.9.9.9:5070;lr>");
    req.headers.push(
        "Authorization",
        &authorization(&ch, "1000", "1234", "sip:127.0.0.1", true),
    );
    phone.send(&req, to).await;
    let ok = phone.expect_status(200).await;
    let contact = ok.headers.get("Contact").unwrap();
    assert!(
        contact.contains(&format!("sip:1000@{}", phone.addr)),
        "{contact}"
    );
    assert!(contact.ends_with(";expires=600"), "{contact}");
    assert_eq!(ok.headers.get("Expires"), Some("600"));
    assert_eq!(ok.headers.get("Path"), Some("<sip:10.9.9.9:5070;lr>"));

    let evs = esl.events_until(|e| is(e, "sofia::register")).await;
    let reg = evs.last().unwrap();
    assert_eq!(reg.get("username"), Some("1000"));
    assert_eq!(reg.get("call-id"), Some("reg1"));
    assert_eq!(reg.get("expires"), Some("600"));
    assert_eq!(
        reg.get("network-port"),
        Some(phone.addr.port().to_string().as_str())
    );
    assert!(
        reg.get("contact")
            .unwrap()
            .contains(&phone.addr.to_string())
    );
    assert_eq!(reg.get("callgroup"), Some("techsupport"));
    let b = sim.sip_binding("1000").unwrap();
    assert_eq!(b.path, vec!["<sip:10.9.9.9:5070;lr>".to_owned()]);
    assert_eq!(b.source, phone.addr);
    assert_eq!(b.expires, 600);

    // Unregister (no qop this time).
    let mut un = register(&phone, "reg1", 3, 0);
    let ch = challenge(&phone, to, &un).await;
    un.headers.set("CSeq", "4 REGISTER");
    un.headers.push(
        "Authorization",
        &authorization(&ch, "1000", "1234", "sip:127.0.0.1", false),
    );
    phone.send(&un, to).await;
    let ok = phone.expect_status(200).await;
    assert_eq!(ok.headers.get("Expires"), Some("0"));
    let evs = esl.events_until(|e| is(e, "sofia::unregister")).await;
    assert_eq!(evs.last().unwrap().get("username"), Some("1000"));
    assert!(sim.sip_binding("1000").is_none());
}

#[tokio::test]
async fn wrong_password_or_unknown_user_is_forbidden() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let phone = Peer::bind().await;
    let mut req = register(&phone, "bad", 1, 600);
    let ch = challenge(&phone, to, &req).await;
    req.headers.push(
        "Authorization",
        &authorization(&ch, "1000", "4321", "sip:127.0.0.1", true),
    );
    phone.send(&req, to).await;
    phone.expect_status(403).await;

    let mut req = register(&phone, "ghost", 1, 600);
    let ch = challenge(&phone, to, &req).await;
    req.headers.push(
        "Authorization",
        &authorization(&ch, "9999", "1234", "sip:127.0.0.1", true),
    );
    phone.send(&req, to).await;
    phone.expect_status(403).await;

    // A nonce the box never issued: challenged again, marked stale.
    let mut req = register(&phone, "stale", 1, 600);
    let forged = "Digest realm=\"127.0.0.1\", nonce=\"feedface\", qop=\"auth\"";
    req.headers.push(
        "Authorization",
        &authorization(forged, "1000", "1234", "sip:127.0.0.1", true),
    );
    phone.send(&req, to).await;
    let r = phone.expect_status(401).await;
    assert!(
        r.headers
            .get("WWW-Authenticate")
            .unwrap()
            .contains("stale=true")
    );
    assert!(sim.sip_binding("1000").is_none());
}

#[tokio::test]
async fn auth_calls_challenges_invites() {
    use locus_sim::{Sim, SimConfig};
    let sim = Sim::start(SimConfig {
        heartbeat: None,
        sip_addr: Some("127.0.0.1:0".parse().unwrap()),
        auth_calls: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let to = sim.sip_addr().unwrap();
    let phone = Peer::bind().await;
    let mut inv = sip_support::invite("sip:3000@127.0.0.1", "1000", phone.addr, "auth-inv");
    phone.send(&inv, to).await;
    let r = phone.expect_status(407).await;
    let ch = r.headers.get("Proxy-Authenticate").unwrap().to_owned();
    assert_eq!(param(&ch, "realm").as_deref(), Some("127.0.0.1"));
    assert!(sim.channels().is_empty());

    // The wrong password: 403. Then the right one (new CSeq each time).
    let uri = "sip:3000@127.0.0.1";
    inv.headers.set("CSeq", "2 INVITE");
    inv.headers
        .push("Proxy-Authorization", &invite_auth(&ch, "4321", uri));
    phone.send(&inv, to).await;
    phone.expect_status(403).await;
    inv.headers.set("CSeq", "3 INVITE");
    inv.headers
        .set("Proxy-Authorization", &invite_auth(&ch, "1234", uri));
    phone.send(&inv, to).await;
    let ok = phone.expect_status(200).await;
    assert_eq!(ok.cseq().unwrap(), (3, "INVITE"));
    assert_eq!(sim.channels().len(), 1);
}

/// Header names of a message, in order.
fn names(m: &SipMessage) -> Vec<String> {
    let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
    text.split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
        .collect()
}

#[tokio::test]
async fn invite_challenge_reads_like_freeswitch_and_another_boxs_nonce_is_stale() {
    use locus_sim::{Sim, SimConfig};
    // Two boxes with the defaults (vanilla: auth-calls on).
    let mut boxes = Vec::new();
    for _ in 0..2 {
        let cfg = SimConfig {
            heartbeat: None,
            sip_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..SimConfig::default()
        };
        assert!(cfg.auth_calls);
        boxes.push(Sim::start(cfg).await.unwrap());
    }
    let (a, b) = (boxes[0].sip_addr().unwrap(), boxes[1].sip_addr().unwrap());
    let phone = Peer::bind().await;
    let uri = "sip:3000@127.0.0.1";
    let mut inv = sip_support::invite(uri, "1000", phone.addr, "two-boxes");
    phone.send(&inv, a).await;
    let r = phone.expect_status(407).await;
    // fixtures/farm/b0-basic-call-least-calls-sip.txt, box to proxy.
    assert!(
        matches!(&r.start, locus_proxy::sip::StartLine::Response { reason, .. } if reason == "Proxy Authentication Required"),
        "{:?}",
        r.start
    );
    let after_cseq: Vec<String> = names(&r)
        .into_iter()
        .skip_while(|n| n != "CSeq")
        .skip(1)
        .collect();
    assert_eq!(
        after_cseq,
        [
            "User-Agent",
            "Accept",
            "Allow",
            "Supported",
            "Allow-Events",
            "Proxy-Authenticate",
            "Content-Length"
        ]
    );
    let h = |n: &str| r.headers.get(n).unwrap().to_owned();
    assert_eq!(
        h("User-Agent"),
        "FreeSWITCH-mod_sofia/1.10.12-release~64bit"
    );
    assert_eq!(h("Accept"), "application/sdp");
    assert_eq!(
        h("Allow"),
        "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE"
    );
    assert_eq!(h("Supported"), "timer, path, replaces");
    assert!(h("Allow-Events").starts_with("talk, hold, conference, presence,"));
    let ch = h("Proxy-Authenticate");
    let nonce = param(&ch, "nonce").unwrap();
    assert_eq!(
        ch,
        format!(r#"Digest realm="127.0.0.1", nonce="{nonce}", algorithm=MD5, qop="auth""#)
    );
    assert!(r.to().unwrap().tag().is_some(), "a To tag, as sofia's");

    // The authenticated retry lands on the other box: it never issued the
    // nonce, so a fresh challenge with stale=true (the capture's loop).
    inv.headers.set("CSeq", "2 INVITE");
    inv.headers
        .push("Proxy-Authorization", &invite_auth(&ch, "1234", uri));
    phone.send(&inv, b).await;
    let stale = phone.expect_status(407).await;
    let ch_b = stale.headers.get("Proxy-Authenticate").unwrap().to_owned();
    let nonce_b = param(&ch_b, "nonce").unwrap();
    assert_ne!(nonce_b, nonce);
    assert_eq!(
        ch_b,
        format!(
            r#"Digest realm="127.0.0.1", nonce="{nonce_b}", stale=true, algorithm=MD5, qop="auth""#
        )
    );
    assert!(boxes[1].channels().is_empty());
    // The same retry at the box that challenged it: taken.
    inv.headers.set("CSeq", "3 INVITE");
    phone.send(&inv, a).await;
    let ok = phone.expect_status(200).await;
    assert_eq!(ok.cseq().unwrap(), (3, "INVITE"));
    assert_eq!(boxes[0].channels().len(), 1);
}

/// Digest credentials for an INVITE (qop auth).
fn invite_auth(challenge: &str, password: &str, uri: &str) -> String {
    let realm = param(challenge, "realm").unwrap();
    let nonce = param(challenge, "nonce").unwrap();
    let ha1 = sip_support::md5_hex(&format!("1000:{realm}:{password}"));
    let ha2 = sip_support::md5_hex(&format!("INVITE:{uri}"));
    let resp = sip_support::md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    format!(
        "Digest username=\"1000\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", qop=auth, nc=00000001, cnonce=\"abc\""
    )
}
