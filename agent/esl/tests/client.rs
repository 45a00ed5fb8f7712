//! The client against hand-driven loopback servers: auth failures, reply
//! pairing, error mapping, overflow, liveness, oversized frames, closing.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{PATIENCE, Peer, collect, config, listen, replay_server};
use locus_esl::capture;
use locus_esl::{Command, DisconnectReason, EslClient, EslError, EslItem, Event, Frame};
use tokio::time::timeout;

fn event(seq: usize) -> Event {
    let mut ev = Event::new("HEARTBEAT");
    ev.push("Event-Sequence", seq.to_string());
    ev.push("Up-Time", "0 years, 0 days");
    ev
}

fn seq(item: &EslItem) -> Option<usize> {
    match item {
        EslItem::Event(ev) => ev.get("Event-Sequence")?.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn wrong_password_is_auth_rejected() {
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let records = capture::read(dir.join("01a-auth-wrong-password.txt")).unwrap();
    let (l, addr) = listen().await;
    let server = tokio::spawn(replay_server(l, records));
    let err = EslClient::connect(&config(&addr, "NotClueCon"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EslError::AuthRejected(t) if t == "-ERR invalid"),
        "{err}"
    );
    assert!(err.to_string().contains("password"), "{err}");
    assert!(err.is_fatal());
    // The client did send the captured `auth NotClueCon\n\n` (writing the
    // notice afterwards may fail: the client is already gone).
    match server.await.unwrap() {
        Ok(checked) => assert_eq!(checked, 1),
        Err(e) => assert!(e.contains(": write:"), "{e}"),
    }
}

#[tokio::test]
async fn password_with_line_break_is_refused_before_sending() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.send(&Frame::auth_request()).await;
        p.request().await
    });
    let err = EslClient::connect(&config(&addr, "x\n\nexit"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EslError::LineBreak(ref s) if !s.contains("exit")),
        "{err}"
    );
    assert_eq!(server.await.unwrap(), None, "nothing may reach the server");
}

#[tokio::test]
async fn first_frame_must_be_auth_request() {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.send(&Frame::command_reply("+OK accepted", None)).await;
        p.request().await
    });
    let err = EslClient::connect(&config(&addr, "ClueCon"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EslError::Unexpected {
                expected: "auth/request",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn refused_connection_is_an_io_error() {
    let (l, addr) = listen().await;
    drop(l);
    let err = EslClient::connect(&config(&addr, "ClueCon"))
        .await
        .unwrap_err();
    assert!(matches!(err, EslError::Io(_)), "{err}");
}

#[tokio::test]
async fn api_reply_is_paired_past_interleaved_events() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        assert_eq!(
            p.request().await.unwrap().command(),
            Command::Api("status".into())
        );
        for i in 0..3 {
            p.send(&Frame::event_json(&event(i))).await;
        }
        p.send(&Frame::api_response("UP 0 years\n")).await;
        p.send(&Frame::event_plain(&event(3))).await;
        p
    });
    let (h, mut s) = EslClient::connect(&config(&addr, "ClueCon")).await.unwrap();
    assert_eq!(h.api("status").await.unwrap(), "UP 0 years\n");
    for want in 0..4 {
        assert_eq!(seq(&s.recv().await.unwrap()), Some(want));
    }
    drop(server.await.unwrap());
    assert_eq!(
        s.recv().await,
        Some(EslItem::Disconnected(DisconnectReason::Eof))
    );
    assert_eq!(s.recv().await, None);
}

#[tokio::test]
async fn err_bodies_map_to_distinct_errors() {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        p.request().await.unwrap();
        p.send(&Frame::api_response("-ERR no reply\n")).await;
        p.request().await.unwrap();
        p.send(&Frame::api_response("-ERR foo Command not found!\n"))
            .await;
        p.request().await.unwrap();
        p.send(&Frame::command_reply("-ERR command not found", None))
            .await;
        p.request().await.unwrap();
        p.send(&Frame::api_response("-ERR no reply\n")).await;
        p.request().await
    });
    let (h, _s) = EslClient::connect(&config(&addr, "ClueCon")).await.unwrap();
    let no_reply = h.api("hash select/x").await.unwrap_err();
    assert!(matches!(no_reply, EslError::NoReply) && !no_reply.is_fatal());
    let api = h.api("foo").await.unwrap_err();
    assert!(
        matches!(api, EslError::Api(ref t) if t == "foo Command not found!"),
        "{api}"
    );
    let cmd = h.command(Command::Raw("nonsense".into())).await.unwrap();
    assert_eq!(cmd.reply_text(), Some("-ERR command not found"));
    assert_eq!(h.api_raw("hash select/x").await.unwrap(), "-ERR no reply\n");
}

#[tokio::test]
async fn a_late_reply_is_consumed_by_its_timed_out_command() {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        let first = p.request().await.unwrap();
        let second = p.request().await.unwrap();
        p.send(&Frame::api_response(format!("{}\n", first.line)))
            .await;
        p.send(&Frame::api_response(format!("{}\n", second.line)))
            .await;
        p.request().await
    });
    let mut cfg = config(&addr, "ClueCon");
    cfg.command_timeout = Duration::from_millis(200);
    let (h, _s) = EslClient::connect(&cfg).await.unwrap();
    let err = h.api("one").await.unwrap_err();
    assert!(
        matches!(err, EslError::Timeout(_)) && !err.is_fatal(),
        "{err}"
    );
    assert_eq!(h.api("two").await.unwrap(), "api two\n");
}

#[tokio::test]
async fn a_command_with_a_line_break_is_never_written() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        let req = p.request().await.unwrap();
        p.send(&Frame::api_response("ok")).await;
        req
    });
    let (h, _s) = EslClient::connect(&config(&addr, "ClueCon")).await.unwrap();
    let err = h.api("status\n\nexit").await.unwrap_err();
    assert!(matches!(err, EslError::LineBreak(_)), "{err}");
    assert_eq!(h.api("version").await.unwrap(), "ok");
    assert_eq!(server.await.unwrap().line, "api version");
}

#[tokio::test]
async fn oversized_frame_ends_the_connection_with_an_error() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        p.request().await.unwrap();
        p.send_raw(b"Content-Length: 999999\nContent-Type: text/event-json\n\n")
            .await;
        p
    });
    let mut cfg = config(&addr, "ClueCon");
    cfg.max_body = 1024;
    let (h, s) = EslClient::connect(&cfg).await.unwrap();
    let err = h.api("status").await.unwrap_err();
    assert!(
        matches!(err, EslError::Disconnected) && err.is_fatal(),
        "{err}"
    );
    let items = collect(s).await;
    match items.as_slice() {
        [EslItem::Disconnected(DisconnectReason::Error(e))] => assert!(e.contains("999999"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(h.is_closed());
    assert!(matches!(h.api("status").await, Err(EslError::Disconnected)));
    drop(server.await.unwrap());
}

#[tokio::test]
async fn full_queue_drops_and_flags_overflow_without_blocking_the_reader() {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        p.request().await.unwrap();
        for i in 0..50 {
            p.send(&Frame::event_json(&event(i))).await;
        }
        p.send(&Frame::api_response("after the flood")).await;
        p.request().await.unwrap();
        p.send(&Frame::event_json(&event(50))).await;
        p.send(&Frame::api_response("after the gap")).await;
        p.request().await
    });
    let mut cfg = config(&addr, "ClueCon");
    cfg.event_queue = 4;
    let (h, mut s) = EslClient::connect(&cfg).await.unwrap();
    // Nobody reads the stream, yet the reply behind 50 events arrives.
    assert_eq!(h.api("status").await.unwrap(), "after the flood");
    assert_eq!(h.dropped(), 46);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(timeout(PATIENCE, s.recv()).await.unwrap().unwrap());
    }
    let seqs: Vec<_> = got[..4].iter().map(seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3].map(Some));
    assert_eq!(got[4], EslItem::Overflow { dropped: 46 });
    // After the gap, events flow again and no second Overflow appears.
    assert_eq!(h.api("status").await.unwrap(), "after the gap");
    assert_eq!(seq(&s.recv().await.unwrap()), Some(50));
    assert_eq!(h.dropped(), 46);
}

#[tokio::test]
async fn silent_server_fails_the_liveness_probe() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        let probe = p.request().await.unwrap();
        (probe, p)
    });
    let mut cfg = config(&addr, "ClueCon");
    cfg.liveness = Duration::from_millis(150);
    cfg.command_timeout = Duration::from_millis(150);
    let (h, s) = EslClient::connect(&cfg).await.unwrap();
    let items = collect(s).await;
    assert_eq!(
        items,
        [EslItem::Disconnected(DisconnectReason::LivenessTimeout)]
    );
    let (probe, _p) = server.await.unwrap();
    assert_eq!(probe.command(), Command::Api("status".into()));
    assert!(h.is_closed());
}

#[tokio::test]
async fn answered_probes_keep_a_quiet_connection_up() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        let mut probes = 0;
        while let Some(req) = p.request().await {
            assert_eq!(req.line, "api status");
            probes += 1;
            p.send(&Frame::api_response("UP\n")).await;
        }
        probes
    });
    let mut cfg = config(&addr, "ClueCon");
    cfg.liveness = Duration::from_millis(100);
    cfg.command_timeout = Duration::from_millis(500);
    let (h, mut s) = EslClient::connect(&cfg).await.unwrap();
    // Well past liveness + probe timeout: still up.
    assert!(timeout(Duration::from_millis(900), s.recv()).await.is_err());
    assert!(!h.is_closed());
    drop(h);
    assert_eq!(
        s.recv().await,
        Some(EslItem::Disconnected(DisconnectReason::Closed))
    );
    assert!(server.await.unwrap() >= 3);
}

#[tokio::test]
async fn close_ends_the_stream_and_fails_commands() {
    let (l, addr) = listen().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::handshake(&l).await;
        p.request().await
    });
    let (h, s) = EslClient::connect(&config(&addr, "ClueCon")).await.unwrap();
    let h2 = h.clone();
    h2.close();
    assert_eq!(
        collect(s).await,
        [EslItem::Disconnected(DisconnectReason::Closed)]
    );
    assert!(matches!(h.api("status").await, Err(EslError::Disconnected)));
    // The server sees the socket close.
    assert_eq!(server.await.unwrap(), None);
}
