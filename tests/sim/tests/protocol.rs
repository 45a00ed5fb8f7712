//! The ESL conversation itself, byte for byte against the captures:
//! authentication, replies, api framing, disconnects on `exit`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use locus_esl::capture::{self, Direction};
use support::*;

/// Every byte the server sent in `01a` equals what the simulator sends for
/// the same client bytes, then both close.
#[tokio::test]
async fn wrong_password_is_byte_identical_to_capture() {
    let sim = sim().await;
    let recs = records("01a-auth-wrong-password.txt");
    let mut c = Client::connect(sim.esl_addr()).await;
    let mut got = Vec::new();
    for r in &recs {
        match r.direction {
            Direction::ClientToServer => c.send_raw(&r.data).await,
            Direction::ServerToClient => got.extend(c.frame().await.raw),
            Direction::Eof => c.expect_eof().await,
        }
    }
    assert_eq!(got, capture::server_stream(&recs));
}

#[tokio::test]
async fn auth_and_subscription_replies_match_capture_01() {
    let sim = sim().await;
    let frames = server_frames("01-auth-and-api.json.txt");
    let mut c = Client::connect(sim.esl_addr()).await;
    assert_eq!(c.frame().await.raw, frames[0].raw);
    c.send("auth ClueCon").await;
    assert_eq!(c.frame().await.raw, frames[1].raw);
    c.send("event json ALL").await;
    assert_eq!(c.frame().await.raw, frames[2].raw);
    let plain = server_frames("01-auth-and-api.plain.txt");
    c.send("event plain ALL").await;
    assert_eq!(c.frame().await.raw, plain[2].raw);
}

#[tokio::test]
async fn commands_before_auth_are_refused_but_keep_the_connection() {
    let sim = sim().await;
    let mut c = Client::connect(sim.esl_addr()).await;
    c.frame().await;
    c.send("api status").await;
    assert_eq!(
        c.frame().await.get("Reply-Text"),
        Some("-ERR command not found")
    );
    c.send("event json ALL").await;
    assert_eq!(
        c.frame().await.get("Reply-Text"),
        Some("-ERR command not found")
    );
    c.send("auth ClueCon").await;
    assert_eq!(c.frame().await.get("Reply-Text"), Some("+OK accepted"));
}

#[tokio::test]
async fn unknown_and_bare_commands_match_capture_01() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    let replies = command_replies("01-auth-and-api.json.txt");
    let mut checked = 0;
    for (cmd, want) in replies.iter().filter(|(c, _)| {
        [
            "api",
            "nonsense_top_level_command",
            "api this_command_does_not_exist foo",
        ]
        .contains(&c.as_str())
    }) {
        c.send(cmd).await;
        assert_eq!(c.reply().await.raw, want.raw, "reply to {cmd:?}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// Commands whose answers do not depend on time or state are answered
/// byte for byte as in capture 01's idle phase.
#[tokio::test]
async fn fixed_api_responses_are_byte_identical() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    let fixed = [
        "api version",
        "api hostname",
        "api global_getvar switchname",
        "api global_getvar domain",
        "api show channels as json",
        "api show calls as json",
        "api show channels count",
        "api show calls count",
        "api valet_info",
        "api conference json_list",
        "api conference list",
        "api callcenter_config queue list",
        "api callcenter_config agent list",
        "api callcenter_config tier list",
        "api fifo list",
    ];
    let replies = command_replies("01-auth-and-api.json.txt");
    for cmd in fixed {
        // The first (idle) occurrence in the capture.
        let (_, want) = replies.iter().find(|(c, _)| c == cmd).unwrap();
        c.send(cmd).await;
        let got = c.reply().await;
        assert_eq!(
            String::from_utf8_lossy(&got.raw),
            String::from_utf8_lossy(&want.raw),
            "response to {cmd}"
        );
    }
}

#[tokio::test]
async fn bgapi_replies_then_fires_background_job() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json BACKGROUND_JOB")).await;
    c.send("bgapi this_command_does_not_exist").await;
    let reply = c.frame().await;
    let job = reply.get("Job-UUID").unwrap().to_owned();
    assert_eq!(
        reply.get("Reply-Text").unwrap(),
        format!("+OK Job-UUID: {job}")
    );
    assert_eq!(reply.raw.len(), 139, "same length as capture 01 #81");
    let ev = c.frame().await.event().unwrap();
    assert_eq!(ev.get("Job-UUID"), Some(job.as_str()));
    assert_eq!(
        ev.body(),
        Some("-ERR this_command_does_not_exist Command not found!\n")
    );
    // Header names as captured (01 #83).
    let cap = capture_events("01-auth-and-api.json.txt")
        .into_iter()
        .find(|e| e.name() == Some("BACKGROUND_JOB"))
        .unwrap();
    assert_eq!(nonvar_names(&ev), nonvar_names(&cap));
    // A client-chosen Job-UUID is kept.
    c.send("bgapi hostname\nJob-UUID: my-job").await;
    assert_eq!(c.frame().await.get("Job-UUID"), Some("my-job"));
    let ev = c.frame().await.event().unwrap();
    assert_eq!(
        (ev.get("Job-UUID"), ev.body()),
        (Some("my-job"), Some("vm"))
    );
}

#[tokio::test]
async fn api_events_go_to_all_subscribers_as_captured() {
    let sim = sim().await;
    let mut watcher = Client::ready(sim.esl_addr(), Some("json API")).await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    c.api("status").await;
    c.api("this_command_does_not_exist foo").await;
    let a = watcher.frame().await.event().unwrap();
    let b = watcher.frame().await.event().unwrap();
    assert_eq!(
        (a.get("API-Command"), a.get("API-Command-Argument")),
        (Some("status"), None)
    );
    assert_eq!(b.get("API-Command-Argument"), Some("foo"));
    let caps = capture_events("01-auth-and-api.json.txt");
    let cap = caps
        .iter()
        .find(|e| e.get("API-Command") == Some("this_command_does_not_exist"))
        .unwrap();
    assert_eq!(nonvar_names(&b), nonvar_names(cap));
}

#[tokio::test]
async fn exit_says_goodbye_like_capture_01() {
    let sim = sim().await;
    let frames = server_frames("01-auth-and-api.json.txt");
    let n = frames.len();
    let mut c = Client::ready(sim.esl_addr(), None).await;
    c.send("exit").await;
    assert_eq!(c.frame().await.raw, frames[n - 2].raw);
    assert_eq!(c.frame().await.raw, frames[n - 1].raw);
    c.expect_eof().await;
}

#[tokio::test]
async fn subscription_commands_reply_like_freeswitch() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    for (cmd, want) in [
        ("noevents", "-ERR not listening for events"),
        ("event json", "-ERR no keywords supplied"),
        (
            "event json CHANNEL_CREATE CUSTOM sofia::register",
            "+OK event listener enabled json",
        ),
        ("nixevent CHANNEL_CREATE", "+OK events nixed"),
        (
            "filter Unique-ID abc",
            "+OK filter added. [Unique-ID]=[abc]",
        ),
        (
            "filter delete Unique-ID abc",
            "+OK filter deleted. [Unique-ID][abc]",
        ),
        ("noevents", "+OK no longer listening for events"),
        ("linger", "-ERR not controlling a session"),
    ] {
        c.send(cmd).await;
        assert_eq!(c.frame().await.get("Reply-Text"), Some(want), "{cmd}");
    }
}

#[tokio::test]
async fn garbage_input_closes_without_hurting_others() {
    let sim = sim().await;
    let mut good = Client::ready(sim.esl_addr(), None).await;
    let mut bad = Client::connect(sim.esl_addr()).await;
    bad.frame().await;
    bad.send_raw(&vec![b'x'; 70_000]).await;
    bad.expect_eof().await;
    let mut bad = Client::connect(sim.esl_addr()).await;
    bad.frame().await;
    bad.send_raw(b"auth ClueCon\nContent-Length: 99999999999\n\n")
        .await;
    bad.expect_eof().await;
    assert_eq!(good.api("hostname").await.text(), "vm");
}

/// The simulator serialises events with `locus_esl::Event`; that must give
/// back the captured bytes exactly (JSON and plain).
#[test]
fn event_serialisation_reproduces_capture_bytes() {
    for file in [
        "02-register-and-basic-call.json.txt",
        "06-conference.json.txt",
        "02-register-and-basic-call.plain.txt",
        "01-auth-and-api.plain.txt",
    ] {
        let mut n = 0;
        for f in server_frames(file) {
            let back = match f.ctype() {
                "text/event-json" => locus_esl::Event::from_json(&f.body).unwrap().to_json(),
                "text/event-plain" => locus_esl::Event::from_plain(&f.body).unwrap().to_plain(),
                _ => continue,
            };
            assert_eq!(back.as_bytes(), &f.body[..], "{file}");
            n += 1;
        }
        assert!(n > 100, "{file}: only {n} events");
    }
}

/// mod_event_socket compares verbs with `strncasecmp`: upper-case verbs
/// and `exit` followed by anything still work, arguments keep their case.
#[tokio::test]
async fn verbs_ignore_case_like_freeswitch() {
    let sim = sim().await;
    let frames = server_frames("01-auth-and-api.json.txt");
    let n = frames.len();
    let mut c = Client::connect(sim.esl_addr()).await;
    c.frame().await;
    c.send("AUTH ClueCon").await;
    assert_eq!(c.frame().await.get("Reply-Text"), Some("+OK accepted"));
    assert_eq!(c.api("hostname").await.text(), "vm");
    c.send("API hostname").await;
    assert_eq!(c.reply().await.text(), "vm");
    c.send("Event JSON CHANNEL_CREATE").await;
    assert_eq!(
        c.frame().await.get("Reply-Text"),
        Some("+OK event listener enabled json")
    );
    c.send("EXIT now").await;
    assert_eq!(c.frame().await.raw, frames[n - 2].raw);
    assert_eq!(c.frame().await.raw, frames[n - 1].raw);
    c.expect_eof().await;
}
