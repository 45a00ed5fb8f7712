//! Every capture replayed through the real client over TCP: the client must
//! write exactly the captured commands, pair every reply despite the events
//! in between, hand `bgapi` callers their `BACKGROUND_JOB`, deliver every
//! event in order, and end with the right disconnect reason.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{collect, config, listen, replay_server};
use locus_esl::capture::{self, Direction, Record};
use locus_esl::frame::content_type as ct;
use locus_esl::{
    Command, DisconnectReason, EslClient, EslCodec, EslError, EslItem, Event, Frame, Message,
};
use tokio_util::codec::Decoder;

fn frame_of(rec: &Record) -> Frame {
    EslCodec::default()
        .decode(&mut bytes::BytesMut::from(&rec.data[..]))
        .unwrap()
        .unwrap()
}

/// The reply to the command at `records[i]`: the next non-event frame.
fn reply_after(records: &[Record], i: usize) -> Frame {
    records[i + 1..]
        .iter()
        .filter(|r| r.direction == Direction::ServerToClient)
        .map(frame_of)
        .find(|f| !f.content_type().starts_with("text/event-"))
        .expect("a reply")
}

fn captured_events(records: &[Record]) -> Vec<Event> {
    records
        .iter()
        .filter(|r| r.direction == Direction::ServerToClient)
        .filter_map(|r| match Message::try_from(frame_of(r)).unwrap() {
            Message::Event(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

fn job_body(records: &[Record], job: &str) -> String {
    captured_events(records)
        .into_iter()
        .find(|ev| ev.name() == Some("BACKGROUND_JOB") && ev.get("Job-UUID") == Some(job))
        .and_then(|ev| ev.body().map(str::to_owned))
        .expect("the BACKGROUND_JOB")
}

/// How a conversation ends: the last frame before EOF.
fn expected_end(records: &[Record]) -> DisconnectReason {
    let last = records
        .iter()
        .rfind(|r| r.direction == Direction::ServerToClient)
        .map(frame_of)
        .unwrap();
    match last.content_type() {
        ct::DISCONNECT_NOTICE => DisconnectReason::Notice(last.body_text()),
        _ => DisconnectReason::Eof,
    }
}

async fn replay(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let records = capture::read(path).unwrap();
    let (listener, addr) = listen().await;
    let server = tokio::spawn(replay_server(listener, records.clone()));
    let commands: Vec<(usize, Command)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.direction == Direction::ClientToServer)
        .map(|(i, r)| {
            (
                i,
                Command::parse(std::str::from_utf8(&r.data).unwrap().trim_end()),
            )
        })
        .collect();
    let Some((auth_at, Command::Auth(password))) = commands.first().cloned() else {
        panic!("{name}: no auth");
    };
    let (handle, stream) = match EslClient::connect(&config(&addr, &password)).await {
        Ok(ok) => ok,
        Err(EslError::AuthRejected(text)) => {
            assert_eq!(
                reply_after(&records, auth_at).reply_text(),
                Some(text.as_str())
            );
            assert!(text.starts_with("-ERR"), "{name}: {text}");
            return;
        }
        Err(e) => panic!("{name}: connect: {e}"),
    };
    let consumer = tokio::spawn(collect(stream));
    for (i, cmd) in commands.into_iter().skip(1) {
        let want = reply_after(&records, i);
        match cmd {
            Command::Event(format, names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                handle.subscribe(format, &names).await.unwrap();
            }
            Command::Api(c) => {
                let got = handle.api_raw(&c).await;
                match want.content_type() {
                    ct::API_RESPONSE => {
                        assert_eq!(got.unwrap(), want.body_text(), "{name}: api {c}")
                    }
                    _ => assert!(matches!(got, Err(EslError::CommandFailed(_))), "{name}"),
                }
            }
            Command::BgApi(c) => {
                let body = job_body(&records, want.job_uuid().unwrap());
                match handle.bgapi(&c).await {
                    Ok(got) => assert_eq!(got, body, "{name}: bgapi {c}"),
                    Err(EslError::Api(text)) => {
                        assert!(body.starts_with("-ERR") && body.contains(&text))
                    }
                    Err(e) => panic!("{name}: bgapi {c}: {e}"),
                }
            }
            Command::Exit => handle.exit().await.unwrap(),
            other => assert_eq!(handle.command(other).await.unwrap(), want, "{name}"),
        }
    }
    let items = consumer.await.unwrap();
    let (last, events) = items.split_last().unwrap();
    assert_eq!(
        last,
        &EslItem::Disconnected(expected_end(&records)),
        "{name}"
    );
    let want: Vec<EslItem> = captured_events(&records)
        .into_iter()
        .map(EslItem::Event)
        .collect();
    assert_eq!(events.len(), want.len(), "{name}: event count");
    assert!(events == want.as_slice(), "{name}: events differ");
    assert_eq!(handle.dropped(), 0);
    let checked = server
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(checked >= 2, "{name}");
}

#[tokio::test]
async fn auth_and_api_conversation_pairs_every_reply() {
    replay(&capture::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("01-auth-and-api.json.txt"))
        .await;
}

#[tokio::test]
async fn bgapi_originate_gets_its_background_job() {
    replay(&capture::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join("13-originate-park.json.txt"))
        .await;
}

#[tokio::test]
async fn every_capture_replays_through_the_client() {
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 30);
    for path in files {
        replay(&path).await;
    }
}

#[tokio::test]
async fn shutdown_notice_surfaces_as_disconnected_notice() {
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let records = capture::read(dir.join("09-shutdown-while-connected.json.txt")).unwrap();
    assert_eq!(
        expected_end(&records),
        DisconnectReason::Notice("The system is being shut down.\n".into())
    );
    replay(&dir.join("09-shutdown-while-connected.json.txt")).await;
}

#[tokio::test]
async fn sigkill_surfaces_as_disconnected_eof() {
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let records = capture::read(dir.join("09c-sigkill-while-connected.json.txt")).unwrap();
    assert_eq!(expected_end(&records), DisconnectReason::Eof);
    replay(&dir.join("09c-sigkill-while-connected.json.txt")).await;
}
