//! `locus_sim::phone` against one simulated box (the box as the phone's
//! next hop, no proxy): digest REGISTER, phone-to-phone calls bridged by
//! the box, features, hang-ups from either side, refused calls.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::Duration;

use locus_sim::phone::{Phone, PhoneError};
use locus_sim::{Sim, SimConfig, SimHandle, VANILLA_PASSWORD};

const WAIT: Duration = Duration::from_secs(10);

async fn sip_box() -> (SimHandle, SocketAddr) {
    let sim = Sim::start(SimConfig {
        heartbeat: None,
        sip_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let at = sim.sip_addr().unwrap();
    (sim, at)
}

async fn phone(user: &str, at: SocketAddr, domain: &str) -> Phone {
    Phone::bind(user, VANILLA_PASSWORD, domain, at)
        .await
        .unwrap()
        .with_timeout(WAIT)
}

/// The box's domain (its digest realm): the simulator's default.
fn domain(_: &SimHandle) -> String {
    SimConfig::default().domain
}

#[tokio::test]
async fn register_answers_the_digest_challenge() {
    let (sim, at) = sip_box().await;
    let p = phone("1000", at, &domain(&sim)).await;
    assert_eq!(p.register(300).await.unwrap(), 200);
    let b = sim.sip_binding("1000").expect("bound at the box");
    assert!(
        b.contact.contains(&p.local_addr().to_string()),
        "{b:?} vs {}",
        p.local_addr()
    );
    assert_eq!(b.expires, 300);
    // The box saw the challenge round: two REGISTERs of one Call-ID.
    let regs: Vec<_> = sim
        .sip_received()
        .into_iter()
        .filter(|s| s.method == "REGISTER")
        .collect();
    assert_eq!(regs.len(), 2, "{regs:?}");
    assert_eq!(regs[0].call_id, regs[1].call_id);

    let wrong = Phone::bind("1001", "not-the-password", &domain(&sim), at)
        .await
        .unwrap();
    assert_eq!(wrong.register(300).await.unwrap(), 403);
    assert!(sim.sip_binding("1001").is_none());

    assert_eq!(p.register(0).await.unwrap(), 200);
    assert!(sim.sip_binding("1000").is_none(), "expires 0 unregisters");
    sim.stop().await;
}

#[tokio::test]
async fn a_call_between_two_phones_is_answered_and_hung_up_both_ways() {
    let (sim, at) = sip_box().await;
    let d = domain(&sim);
    let (a, b) = (phone("1000", at, &d).await, phone("1001", at, &d).await);
    assert_eq!(a.register(300).await.unwrap(), 200);
    assert_eq!(b.register(300).await.unwrap(), 200);

    // A hangs up.
    let caller = tokio::spawn({
        let a = a.clone();
        async move { a.call("1001").await }
    });
    let incoming = b.next_call(WAIT).await.unwrap();
    assert_eq!(incoming.from_user().as_deref(), Some("1000"));
    incoming.ring().await.unwrap();
    let b_call = incoming.answer().await.unwrap();
    let mut a_call = caller.await.unwrap().unwrap();
    assert_eq!(a_call.status, 200);
    assert!(
        a_call.provisional.contains(&180),
        "{:?}",
        a_call.provisional
    );
    assert!(a_call.is_up() && b_call.is_up());
    assert_eq!(sim.calls().len(), 1, "one bridged call on the box");
    assert_eq!(a_call.hangup().await.unwrap(), 200);
    assert!(b_call.wait_ended(WAIT).await, "the box BYEs the callee");
    assert!(!b_call.is_up());

    // B hangs up (answering mode this time).
    let caller = tokio::spawn({
        let a = a.clone();
        async move { a.call("1001").await }
    });
    let mut b_call = b.answer_next(WAIT).await.unwrap();
    let a_call = caller.await.unwrap().unwrap();
    assert_eq!(a_call.status, 200);
    assert_eq!(b_call.hangup().await.unwrap(), 200);
    assert!(a_call.wait_ended(WAIT).await, "the box BYEs the caller");
    assert!(matches!(
        b_call.hangup().await,
        Err(PhoneError::NoDialog(_))
    ));
    sim.stop().await;
}

#[tokio::test]
async fn features_answer_and_refusals_carry_their_status() {
    let (sim, at) = sip_box().await;
    let a = phone("1002", at, &domain(&sim)).await;
    assert_eq!(a.register(300).await.unwrap(), 200);
    let mut echo = a.call("9196").await.unwrap();
    assert_eq!(echo.status, 200);
    assert_eq!(sim.calls().len(), 1);
    assert_eq!(echo.hangup().await.unwrap(), 200);

    let mut nobody = a.call("1999").await.unwrap();
    assert_eq!(nobody.status, 404);
    assert!(!nobody.is_up());
    assert!(matches!(
        nobody.hangup().await,
        Err(PhoneError::NoDialog(_))
    ));

    // A user who rings and never answers: the caller's CANCEL (after the
    // phone's timeout) reaches the callee as a CANCEL from the box.
    let b = phone("1003", at, &domain(&sim)).await;
    assert_eq!(b.register(300).await.unwrap(), 200);
    let impatient = a.clone().with_timeout(Duration::from_millis(1500));
    let caller = tokio::spawn(async move { impatient.call("1003").await });
    let incoming = b.next_call(WAIT).await.unwrap();
    incoming.ring().await.unwrap();
    assert!(matches!(
        caller.await.unwrap(),
        Err(PhoneError::Timeout { .. })
    ));
    assert!(incoming.wait_cancelled(WAIT).await);
    assert!(matches!(
        incoming.answer().await,
        Err(PhoneError::NoDialog(_))
    ));
    sim.stop().await;
}
