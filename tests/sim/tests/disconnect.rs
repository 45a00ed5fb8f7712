//! How connections end: the four disconnect kinds, `fsctl shutdown` as in
//! captures 09/09b, a SIGKILL as in 09c, and a restarted box.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use locus_sim::{DisconnectKind, SimHandle};
use support::*;

/// Waits (bounded) until the simulator counts `n` clients.
async fn clients(sim: &SimHandle, n: usize) {
    tokio::time::timeout(WAIT, async {
        while sim.esl_clients() != n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("client count");
}

#[tokio::test]
async fn exit_notice_to_everyone() {
    let sim = sim().await;
    let mut a = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let mut b = Client::ready(sim.esl_addr(), None).await;
    sim.disconnect_all(DisconnectKind::Exit).await;
    for c in [&mut a, &mut b] {
        let f = c.frame().await;
        assert_eq!(f.ctype(), "text/disconnect-notice");
        assert_eq!(
            f.text(),
            "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
        );
        c.expect_eof().await;
    }
    // The box is still up.
    Client::ready(sim.esl_addr(), None).await;
}

#[tokio::test]
async fn eof_drops_sockets_without_notice_and_keeps_the_calls() {
    let sim = sim().await;
    let call = sim.call("1000", "1001").await.unwrap();
    let mut a = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.disconnect_all(DisconnectKind::Eof).await;
    a.expect_eof().await;
    let mut b = Client::ready(sim.esl_addr(), None).await;
    let body = b.api("show calls as json").await.text();
    assert!(body.contains(&call.0), "{body}");
}

/// Capture 09c: SIGKILL gives EOF and nothing else; then nobody answers
/// until the box is back.
#[tokio::test]
async fn kill_stops_the_listener_until_restart() {
    let sim = sim().await;
    let call = sim.call("1000", "1001").await.unwrap();
    let old = sim.core_uuid();
    let mut a = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    clients(&sim, 1).await;
    sim.disconnect_all(DisconnectKind::Kill).await;
    a.expect_eof().await;
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            if tokio::net::TcpStream::connect(sim.esl_addr())
                .await
                .is_err()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "listener still accepting after kill");
    sim.restart().await;
    assert_ne!(sim.core_uuid(), old);
    let mut b = connect_retry(&sim).await;
    assert_eq!(
        b.api("show calls as json").await.text(),
        "{\"row_count\": 0}\n"
    );
    assert!(
        sim.calls().is_empty(),
        "calls of {call} survived the restart"
    );
    sim.heartbeat().await;
    b.send("event json HEARTBEAT").await;
    b.frame().await;
    sim.heartbeat().await;
    let hb = b.frame().await.event().unwrap();
    assert_eq!(hb.get("Core-UUID"), Some(sim.core_uuid().as_str()));
}

/// Polls until the re-bound listener accepts.
async fn connect_retry(sim: &SimHandle) -> Client {
    tokio::time::timeout(WAIT, async {
        loop {
            if tokio::net::TcpStream::connect(sim.esl_addr()).await.is_ok() {
                return Client::ready(sim.esl_addr(), None).await;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("listener back")
}

/// Captures 09 and 09b: the requester gets `+OK`, everyone gets SHUTDOWN
/// (if subscribed) and "The system is being shut down.", then EOF.
#[tokio::test]
async fn fsctl_shutdown_like_capture_09() {
    let sim = sim().await;
    let mut watcher = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let mut req = Client::ready(sim.esl_addr(), None).await;
    let want = server_frames("09b-shutdown-requester.txt");
    let reply = req.api("fsctl shutdown").await;
    assert_eq!(reply.raw, want[2].raw);
    assert_eq!(req.frame().await.raw, want[3].raw);
    req.expect_eof().await;
    let cap = capture_events("09-shutdown-while-connected.json.txt");
    let cap_shutdown = cap.iter().find(|e| e.name() == Some("SHUTDOWN")).unwrap();
    let mut saw_shutdown = false;
    loop {
        let f = watcher.frame().await;
        if let Some(ev) = f.event() {
            if ev.name() == Some("SHUTDOWN") {
                assert_eq!(nonvar_names(&ev), nonvar_names(cap_shutdown));
                saw_shutdown = true;
            }
            continue;
        }
        assert_eq!(f.raw, want[3].raw);
        break;
    }
    assert!(saw_shutdown);
    watcher.expect_eof().await;
    sim.restart().await;
    connect_retry(&sim).await;
}

#[tokio::test]
async fn shutdown_notice_kind_keeps_the_box_up() {
    let sim = sim().await;
    let mut a = Client::ready(sim.esl_addr(), None).await;
    sim.disconnect_all(DisconnectKind::Shutdown).await;
    assert_eq!(a.frame().await.text(), "The system is being shut down.\n");
    a.expect_eof().await;
    Client::ready(sim.esl_addr(), None).await;
}

#[tokio::test]
async fn many_clients_all_get_every_event() {
    let sim = sim().await;
    let mut cs = Vec::new();
    for _ in 0..20 {
        cs.push(Client::ready(sim.esl_addr(), Some("plain CHANNEL_CREATE")).await);
    }
    clients(&sim, 20).await;
    let call = sim.call("1000", "1001").await.unwrap();
    for c in &mut cs {
        let a = c.frame().await.event().unwrap();
        let b = c.frame().await.event().unwrap();
        assert_eq!(a.unique_id(), Some(call.0.as_str()));
        assert_eq!(b.get("Call-Direction"), Some("outbound"));
    }
    sim.stop().await;
    for c in &mut cs {
        assert_eq!(c.frame().await.text(), "The system is being shut down.\n");
    }
}
