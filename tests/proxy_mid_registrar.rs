//! Mid-registrar mode (issue 8 item 3): phones get a short expiry, boxes a
//! long one, and the refreshes in between are answered by the proxy, but
//! only a plain refresh on the phone's own flow: a copy of it from another
//! socket, an unregister, and the refresh that comes when the box's
//! binding is about to lapse all go to the box (which challenges them).
//! Real Redis, simulated boxes (vanilla: every REGISTER challenged), the
//! simulator's phones (one Call-ID, rising CSeq, as real phones).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use locus_proxy::registrar::RegistrarMode;
use locus_proxy::sip::SipMessage;
use locus_sim::VANILLA_PASSWORD;
use locus_sim::phone::Phone;
use support::sipfarm::{SipFarm, start_sip_farm};
use support::{DOMAIN, WAIT};
use tokio::net::UdpSocket;

/// REGISTERs of `user` the boxes received: (Expires asked, CSeq).
fn box_registers(farm: &SipFarm, user: &str) -> Vec<(String, String)> {
    farm.nodes
        .iter()
        .flat_map(|n| n.sim.sip_received())
        .filter(|s| s.method == "REGISTER" && s.from_user.as_deref() == Some(user))
        .map(|s| {
            (
                s.header("Expires").unwrap_or_default().to_owned(),
                s.header("CSeq").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn granted(resp: &SipMessage) -> Option<u32> {
    let c = resp.contacts().ok()?.into_iter().next()?;
    c.params.get("expires").flatten()?.parse().ok()
}

async fn mid_farm(phone: u64, boxes: u64) -> SipFarm {
    start_sip_farm(2, |c| {
        c.registrar.mode = RegistrarMode::Mid;
        c.registrar.phone_expires = Duration::from_secs(phone);
        c.registrar.box_expires = Duration::from_secs(boxes);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_on_the_phones_flow_are_answered_by_the_proxy() {
    let farm = mid_farm(60, 3600).await;
    let phone = Phone::bind("1001", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap();
    assert_eq!(phone.register(300).await.unwrap(), 200);
    // The box was asked for an hour (challenge, then the answer); the
    // phone was given a minute.
    let first = box_registers(&farm, "1001");
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|(e, _)| e == "3600"), "{first:?}");
    assert_eq!(granted(&phone.last_register_response().unwrap()), Some(60));
    let b = farm.store.bindings(DOMAIN, "1001").await.unwrap();
    assert_eq!(b.len(), 1);
    let left = b[0].expires_ms.saturating_sub(locus_schema::now_ms());
    assert!(left <= 60_000 + 30_000 + 1_000, "binding for {left} ms");

    // Five refreshes: none reaches a box, each renews the binding.
    for _ in 0..5 {
        assert_eq!(phone.register(300).await.unwrap(), 200);
        assert_eq!(granted(&phone.last_register_response().unwrap()), Some(60));
    }
    assert_eq!(box_registers(&farm, "1001").len(), 2);
    assert_eq!(farm.proxy.registrar.absorbed.get(), 5);
    let b = farm.store.bindings(DOMAIN, "1001").await.unwrap();
    assert_eq!(b[0].cseq, 7, "{b:?}");

    // The same refresh from another socket (a forger who knows the
    // Call-ID, or the phone behind a new NAT port) goes to the box, which
    // challenges it: nothing is renewed on its word.
    let stray = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = stray.local_addr().unwrap();
    let reg = phone.last_register_response().unwrap();
    let call_id = reg.call_id().unwrap().to_owned();
    let contact = b[0].contact.clone();
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKforged1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@{DOMAIN}>;tag=f\r\nTo: <sip:1001@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 99 REGISTER\r\nContact: <{contact}>\r\nExpires: 300\r\n\
         Content-Length: 0\r\n\r\n"
    );
    stray
        .send_to(text.as_bytes(), farm.proxy_udp())
        .await
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let status = loop {
        let (n, _) = tokio::time::timeout(WAIT, stray.recv_from(&mut buf))
            .await
            .expect("no answer to the stray refresh")
            .unwrap();
        let m = SipMessage::parse(&buf[..n]).unwrap();
        if m.status().is_some_and(|s| s >= 200) {
            break m.status().unwrap();
        }
    };
    assert_eq!(status, 401, "a refresh from another socket was answered");
    assert_eq!(farm.proxy.registrar.absorbed.get(), 5);
    assert_eq!(box_registers(&farm, "1001").len(), 3);

    // An unregister always reaches the box.
    assert_eq!(phone.register(0).await.unwrap(), 200);
    assert!(box_registers(&farm, "1001").len() >= 4);
    assert!(
        farm.store
            .bindings(DOMAIN, "1001")
            .await
            .unwrap()
            .is_empty()
    );
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_before_the_box_binding_lapses_goes_to_the_box() {
    // Phones every 5 s, boxes every 20 s: refreshes are answered while the
    // box's binding outlives two phone periods (the first 10 s).
    let farm = mid_farm(5, 20).await;
    let phone = Phone::bind("1002", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap();
    let t0 = tokio::time::Instant::now();
    assert_eq!(phone.register(300).await.unwrap(), 200);
    assert_eq!(phone.register(300).await.unwrap(), 200);
    assert!(t0.elapsed() < Duration::from_secs(10), "machine too slow");
    assert_eq!(farm.proxy.registrar.absorbed.get(), 1);
    assert_eq!(box_registers(&farm, "1002").len(), 2);
    tokio::time::sleep_until(t0 + Duration::from_millis(10_500)).await;
    // Now the box's binding would lapse before the next refresh: this one
    // goes to the box (challenged, answered) and renews it there.
    assert_eq!(phone.register(300).await.unwrap(), 200);
    assert_eq!(farm.proxy.registrar.absorbed.get(), 1);
    let seen = box_registers(&farm, "1002");
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|(e, _)| e == "20"), "{seen:?}");
    // ... and the refresh after that is answered by the proxy again.
    assert_eq!(phone.register(300).await.unwrap(), 200);
    assert_eq!(farm.proxy.registrar.absorbed.get(), 2);
    farm.stop_proxy().await;
}
