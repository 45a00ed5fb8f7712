//! Replays every real capture in `shared/fixtures/esl/` through the codec:
//! whole, in random chunks and byte by byte; classifies every frame; and
//! re-encodes every frame with the server builders to the exact bytes.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use locus_esl::capture::{self, Direction, Record};
use locus_esl::frame::content_type as ct;
use locus_esl::{EslCodec, Event, Frame, Message, ServerCodec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::codec::Decoder;

fn fixture_files() -> Vec<PathBuf> {
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the 30+ captures, got {}",
        files.len()
    );
    files
}

fn name(p: &std::path::Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn s2c(records: &[Record]) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.direction == Direction::ServerToClient)
        .collect()
}

/// Decodes `stream` fed in pieces of the sizes `next_len` picks.
fn decode_in_chunks(stream: &[u8], mut next_len: impl FnMut() -> usize) -> Vec<Frame> {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = next_len().clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            frames.push(f);
        }
    }
    assert!(codec.decode_eof(&mut buf).expect("eof").is_none());
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    frames
}

#[test]
fn every_capture_decodes_identically_whole_chunked_and_bytewise() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for path in fixture_files() {
        let records = capture::read(&path).unwrap();
        let stream = capture::server_stream(&records);
        let whole = decode_in_chunks(&stream, || usize::MAX);
        let n = name(&path);
        assert_eq!(
            whole.len(),
            s2c(&records).len(),
            "{n}: frames != S2C records"
        );
        // Records are cut at message boundaries: each one alone is one frame.
        for (rec, frame) in s2c(&records).iter().zip(&whole) {
            let alone = decode_in_chunks(&rec.data, || usize::MAX);
            assert_eq!(alone.as_slice(), std::slice::from_ref(frame), "{n}");
        }
        let chunked = decode_in_chunks(&stream, || rng.random_range(1..=4096));
        assert_eq!(chunked, whole, "{n}: random chunks");
        let bytewise = decode_in_chunks(&stream, || 1);
        assert_eq!(bytewise, whole, "{n}: byte by byte");
    }
}

#[test]
fn every_frame_classifies_and_every_event_parses() {
    let mut events = 0;
    for path in fixture_files() {
        let n = name(&path);
        let stream = capture::server_stream(&capture::read(&path).unwrap());
        for frame in decode_in_chunks(&stream, || usize::MAX) {
            let kind = frame.content_type().to_owned();
            let msg = Message::try_from(frame).unwrap_or_else(|e| panic!("{n}: {e}"));
            match msg {
                Message::Event(ev) => {
                    assert!(kind.starts_with("text/event-"), "{n}: {kind}");
                    assert!(ev.name().is_some_and(|s| !s.is_empty()), "{n}: {ev:?}");
                    events += 1;
                }
                Message::Other(f) => panic!("{n}: unclassified frame {:?}", f.headers),
                _ => assert!(!kind.starts_with("text/event-"), "{n}"),
            }
        }
    }
    assert!(events > 3000, "only {events} events");
}

/// Rebuilds a frame from its typed reading with the server builders only.
fn rebuild(frame: &Frame) -> Frame {
    let msg = Message::try_from(frame.clone()).unwrap();
    let raw_body = || frame.body.clone().unwrap_or_default();
    match msg {
        Message::AuthRequest => Frame::auth_request(),
        Message::CommandReply { text, job_uuid } => {
            let rebuilt = Frame::command_reply(&text, job_uuid.as_deref());
            if let Some(job) = &job_uuid {
                assert_eq!(Frame::bgapi_reply(job), rebuilt);
            }
            rebuilt
        }
        Message::ApiResponse(_) => Frame::api_response(raw_body()),
        Message::DisconnectNotice(text) => Frame::disconnect_notice(&text),
        Message::Event(ev) if frame.content_type() == ct::EVENT_JSON => Frame::event_json(&ev),
        Message::Event(ev) => Frame::event_plain(&ev),
        Message::Other(f) => f,
    }
}

#[test]
fn every_server_frame_re_encodes_to_the_captured_bytes() {
    let (mut json, mut plain) = (0, 0);
    for path in fixture_files() {
        let n = name(&path);
        let records = capture::read(&path).unwrap();
        for rec in s2c(&records) {
            let frame = decode_in_chunks(&rec.data, || usize::MAX).remove(0);
            let original = Bytes::from(rec.data.clone());
            assert_eq!(frame.to_bytes().unwrap(), original, "{n}: generic write");
            let rebuilt = rebuild(&frame).to_bytes().unwrap();
            if rebuilt != original {
                let diff = rebuilt
                    .iter()
                    .zip(original.iter())
                    .position(|(a, b)| a != b);
                let at = diff.unwrap_or(rebuilt.len().min(original.len()));
                let show = |b: &[u8]| {
                    String::from_utf8_lossy(&b[at.saturating_sub(60)..(at + 60).min(b.len())])
                        .into_owned()
                };
                panic!(
                    "{n}: rebuilt differs at {at}:\n got {:?}\nwant {:?}",
                    show(&rebuilt),
                    show(&original)
                );
            }
            match frame.content_type() {
                ct::EVENT_JSON => json += 1,
                ct::EVENT_PLAIN => plain += 1,
                _ => {}
            }
        }
    }
    assert!(json > 1000 && plain > 1000, "json {json} plain {plain}");
}

#[test]
fn every_client_command_decodes_on_the_server_side_and_re_encodes() {
    let mut seen = 0;
    for path in fixture_files() {
        let n = name(&path);
        let records = capture::read(&path).unwrap();
        for rec in records
            .iter()
            .filter(|r| r.direction == Direction::ClientToServer)
        {
            let mut codec = ServerCodec::default();
            let mut buf = BytesMut::from(&rec.data[..]);
            let req = codec.decode(&mut buf).unwrap().expect("one request");
            assert!(buf.is_empty() && req.headers.is_empty(), "{n}: {req:?}");
            let mut out = BytesMut::new();
            req.command().write_to(&mut out).unwrap();
            assert_eq!(out, rec.data.as_slice(), "{n}");
            seen += 1;
        }
    }
    assert!(seen > 200, "{seen}");
}

#[test]
fn json_and_plain_twins_carry_the_same_headers() {
    // Plain values are percent-decoded, so the same event read from both
    // formats must agree (checked on the first event of file 02's pair).
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let first_create = |file: &str| -> Event {
        let stream = capture::server_stream(&capture::read(dir.join(file)).unwrap());
        decode_in_chunks(&stream, || usize::MAX)
            .into_iter()
            .filter_map(|f| match Message::try_from(f).unwrap() {
                Message::Event(ev) if ev.name() == Some("CHANNEL_CREATE") => Some(ev),
                _ => None,
            })
            .next()
            .unwrap()
    };
    let j = first_create("02-register-and-basic-call.json.txt");
    let p = first_create("02-register-and-basic-call.plain.txt");
    assert_eq!(j.unique_id(), p.unique_id());
    for key in [
        "Caller-Caller-ID-Number",
        "Channel-Name",
        "variable_sip_from_uri",
    ] {
        assert_eq!(j.get(key), p.get(key), "{key}");
    }
}
