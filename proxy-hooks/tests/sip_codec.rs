//! SIP-over-TCP codec: whole, chunked and byte-by-byte streams, keep-alives
//! between messages, size cap, malformed but framed; framing faults
//! (RFC 3261 18.3, RFC 4475's Content-Length cases) either recover at the
//! next message or end the stream with the answer to write; the work of
//! framing a trickled message stays linear.

#![allow(clippy::unwrap_used)] // tests may unwrap

use bytes::{Bytes, BytesMut};
use locus_proxy::sip::{KeepAlive, MAX_MESSAGE, SipCodec, SipError, SipFrame, SipMessage};
use tokio_util::codec::{Decoder, Encoder};

fn options(n: u32, body: &str) -> String {
    format!(
        "OPTIONS sip:fs1.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK{n}\r\n\
Call-ID: c{n}\r\nCSeq: {n} OPTIONS\r\nl: {}\r\n\r\n{body}",
        body.len()
    )
}

fn stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(options(1, "").as_bytes());
    s.extend_from_slice(b"\r\n\r\n");
    s.extend_from_slice(options(2, "v=0\r\n").as_bytes());
    s.extend_from_slice(b"\r\n");
    s.extend_from_slice(b"BROKEN LINE\r\nContent-Length: 3\r\n\r\nabc");
    s.extend_from_slice(options(3, "xyz").as_bytes());
    s
}

/// Short description of a frame, to compare runs.
fn describe(f: &SipFrame) -> String {
    match f {
        SipFrame::Message(m) => format!("msg {} body={}", m.call_id().unwrap(), m.body.len()),
        SipFrame::KeepAlive(k) => format!("{k:?}"),
        SipFrame::Invalid { bytes, .. } => format!("invalid {}", bytes.len()),
    }
}

fn decode_in_chunks(data: &[u8], chunk: usize) -> Vec<String> {
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(describe(&f));
        }
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    out
}

#[test]
fn whole_chunked_and_byte_by_byte_agree() {
    let data = stream();
    let whole = decode_in_chunks(&data, data.len());
    assert_eq!(
        whole,
        [
            "msg c1 body=0",
            "Ping",
            "msg c2 body=5",
            "Pong",
            "invalid 37",
            "msg c3 body=3"
        ]
    );
    for chunk in [1, 2, 3, 7, 64] {
        // A CRLFCRLF ping split anywhere still comes out as one ping.
        assert_eq!(decode_in_chunks(&data, chunk), whole, "chunk {chunk}");
    }
    assert_eq!(decode_in_chunks(&data, 1), whole);
}

/// A request head with a Via (so it can be answered) and `length` as its
/// Content-Length line(s).
fn head(method: &str, length: &str) -> String {
    format!(
        "{method} sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5;branch=z9hG4bKf\r\n\
From: <sip:x@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: frame1\r\nCSeq: 1 {method}\r\n{length}\r\n"
    )
}

/// The cause and the answer of a framing error, the answer parsed.
fn unframed(r: Result<Option<SipFrame>, SipError>) -> (SipError, Option<SipMessage>) {
    match r {
        Err(SipError::Unframed { cause, answer }) => {
            (*cause, answer.map(|a| SipMessage::parse(&a).unwrap()))
        }
        other => panic!("not a framing error: {other:?}"),
    }
}

#[test]
fn unreadable_lengths_end_the_stream_with_a_400() {
    for (length, reason) in [
        ("", "Missing Content-Length"),
        ("Content-Length: -1\r\n", "Bad Content-Length"),
        ("Content-Length: +5\r\n", "Bad Content-Length"),
        ("Content-Length: five\r\n", "Bad Content-Length"),
        (
            "Content-Length: 99999999999999999999999\r\n",
            "Bad Content-Length",
        ),
        ("Content-Length: 5\r\nl: 7\r\n", "Bad Content-Length"),
    ] {
        let mut codec = SipCodec::default();
        let mut buf = BytesMut::from(format!("{}hello", head("INVITE", length)).as_str());
        let (cause, answer) = unframed(codec.decode(&mut buf));
        let answer = answer.unwrap_or_else(|| panic!("no answer for {length:?}"));
        assert_eq!(answer.status(), Some(400), "{length:?}");
        assert!(
            matches!(&answer.start, locus_proxy::sip::StartLine::Response { reason: r, .. } if r == reason),
            "{length:?}: {cause}"
        );
        assert_eq!(answer.call_id().unwrap(), "frame1");
        assert!(answer.to().unwrap().tag().is_some());
    }
    // Same value twice is one length (RFC 4475 3.3.9 asks only for agreement).
    let mut codec = SipCodec::default();
    let twice = format!("{}hello", head("INVITE", "Content-Length: 5\r\nl: 5\r\n"));
    let mut buf = BytesMut::from(twice.as_str());
    assert!(matches!(codec.decode(&mut buf), Ok(Some(SipFrame::Message(m))) if m.body.len() == 5));
    // Nothing to answer: an ACK, a response, a head without a Via.
    for text in [
        head("ACK", "Content-Length: -1\r\n"),
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\nContent-Length: x\r\n\r\n".into(),
        "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n".into(),
    ] {
        let mut buf = BytesMut::from(text.as_str());
        let (_, answer) = unframed(SipCodec::default().decode(&mut buf));
        assert!(answer.is_none(), "{text:?}");
    }
}

#[test]
fn size_cap() {
    // A head that never ends is refused once it passes the cap, with a 513.
    let mut codec = SipCodec::with_max(1024);
    let mut buf = BytesMut::from(head("OPTIONS", "").trim_end());
    let mut result = Ok(None);
    for _ in 0..100 {
        buf.extend_from_slice(b"\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        result = codec.decode(&mut buf);
        if result.is_err() {
            break;
        }
    }
    let (cause, answer) = unframed(result);
    assert!(matches!(cause, SipError::TooLarge { cap: 1024 }));
    assert_eq!(answer.unwrap().status(), Some(513));
    // Exactly at the cap is fine.
    let head = "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0000\r\n\r\n";
    let body = "x".repeat(1024 - head.len());
    let msg = head.replace("0000", &format!("{:04}", body.len())) + &body;
    assert_eq!(msg.len(), 1024);
    let mut buf = BytesMut::from(msg.as_str());
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(SipFrame::Message(_)))
    ));
    // A body too large to skip ends the stream, with a 513.
    let huge = format!("Content-Length: {}\r\n", 100 * MAX_MESSAGE);
    let mut buf = BytesMut::from(self::head("MESSAGE", &huge).as_str());
    let (cause, answer) = unframed(SipCodec::default().decode(&mut buf));
    assert!(matches!(cause, SipError::TooLarge { .. }));
    assert_eq!(answer.unwrap().status(), Some(513));
}

#[test]
fn a_message_too_large_is_refused_and_skipped_then_the_next_is_read() {
    // RFC 3261 21.5.9: a 513 for a well-framed message past the cap; its
    // body is discarded as it arrives and the stream stays in step.
    let big = format!(
        "{}{}",
        head("MESSAGE", &format!("Content-Length: {MAX_MESSAGE}\r\n")),
        "b".repeat(MAX_MESSAGE)
    );
    let mut data = big.into_bytes();
    data.extend_from_slice(options(7, "after").as_bytes());
    for chunk in [data.len(), 4096, 1] {
        let mut codec = SipCodec::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2, "chunk {chunk}");
        let SipFrame::Message(refused) = &frames[0] else {
            panic!("{:?}", frames[0])
        };
        let f = refused.fault().unwrap();
        assert_eq!((f.status, refused.method()), (513, Some("MESSAGE")));
        assert_eq!(describe(&frames[1]), "msg c7 body=5", "chunk {chunk}");
        assert!(buf.is_empty());
    }
}

#[test]
fn a_faulty_but_framed_request_leaves_the_stream_in_step() {
    // 505, 416 and a bad header line are the core's to answer; framing
    // holds, so the next message is read.
    let mut data = Vec::new();
    for start in [
        "OPTIONS sip:a@b SIP/7.0",
        "OPTIONS nobodyKnowsThisScheme:opaque SIP/2.0",
        "OPTIONS sip:a@b;  lr SIP/2.0",
    ] {
        let text = options(1, "abc").replacen("OPTIONS sip:fs1.example.com SIP/2.0", start, 1);
        data.extend_from_slice(text.as_bytes());
    }
    data.extend_from_slice(options(2, "").as_bytes());
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::from(&data[..]);
    let mut statuses = Vec::new();
    while let Some(SipFrame::Message(m)) = codec.decode(&mut buf).unwrap() {
        statuses.push(m.fault().map(|f| f.status));
    }
    assert_eq!(statuses, [Some(505), Some(416), Some(400), None]);
    assert!(buf.is_empty());
}

#[test]
fn trickled_bytes_cost_linear_work() {
    // Almost 64 KiB, one byte per read: every byte is searched once and
    // the head read once. Rescanning the buffer on each read (the old
    // codec) would look at about 2 * 10^9 bytes.
    let pad = "X-Pad: ".to_string() + &"p".repeat(53) + "\r\n";
    let mut text = options(3, "").replace("l: 0\r\n", "");
    text.truncate(text.len() - 2);
    while text.len() + pad.len() + 4096 < MAX_MESSAGE {
        text.push_str(&pad);
    }
    let body = "v".repeat(3000);
    text.push_str(&format!("l: {}\r\n\r\n{body}", body.len()));
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::new();
    let mut got = None;
    for b in text.as_bytes() {
        buf.extend_from_slice(&[*b]);
        if let Some(f) = codec.decode(&mut buf).unwrap() {
            got = Some(describe(&f));
        }
    }
    assert_eq!(got.as_deref(), Some("msg c3 body=3000"));
    let n = text.len() as u64;
    assert!(n > 60_000);
    assert!(
        codec.examined() <= 2 * n,
        "examined {} bytes for {n}",
        codec.examined()
    );
    // A head that never ends: linear too, up to the cap.
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::new();
    let mut fed = 0u64;
    for b in pad.as_bytes().iter().cycle().take(2 * MAX_MESSAGE) {
        buf.extend_from_slice(&[*b]);
        fed += 1;
        if codec.decode(&mut buf).is_err() {
            break;
        }
    }
    assert_eq!(fed, MAX_MESSAGE as u64 + 1, "refused just past the cap");
    assert!(codec.examined() <= 2 * fed, "examined {}", codec.examined());
}

#[test]
fn lone_crlf_is_a_pong_once_more_bytes_arrive() {
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::from("\r\n");
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(options(4, "").as_bytes());
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(SipFrame::KeepAlive(KeepAlive::Pong))
    ));
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(SipFrame::Message(_))
    ));
}

#[test]
fn a_lone_crlf_after_our_own_ping_is_its_pong_at_once() {
    let mut codec = SipCodec::default();
    codec.expect_pong();
    let mut buf = BytesMut::from("\r\n");
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(SipFrame::KeepAlive(KeepAlive::Pong))
    ));
    assert!(buf.is_empty());
    // Only the one pong: the next lone CRLF may again start a ping.
    buf.extend_from_slice(b"\r\n");
    assert!(codec.decode(&mut buf).unwrap().is_none());
}

#[test]
fn partial_ping_waits_and_encoder_passes_bytes() {
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::from("\r\n\r");
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b"\n");
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(SipFrame::KeepAlive(KeepAlive::Ping))
    ));
    let mut out = BytesMut::new();
    codec.encode(Bytes::from(options(9, "")), &mut out).unwrap();
    let mut again = out.clone();
    assert!(matches!(
        codec.decode(&mut again).unwrap(),
        Some(SipFrame::Message(_))
    ));
}

#[test]
fn random_streams_never_panic() {
    let mut seed = 0xDEAD_BEEF_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = stream();
    for _ in 0..3_000 {
        let mut data = base.clone();
        for _ in 0..(next() % 6) {
            let at = (next() as usize) % data.len();
            data[at] = next() as u8;
        }
        let mut codec = SipCodec::with_max(4096);
        let mut buf = BytesMut::new();
        'outer: for piece in data.chunks(1 + (next() % 50) as usize) {
            buf.extend_from_slice(piece);
            // Each decode consumes bytes or returns None/Err: bounded.
            for _ in 0..data.len() {
                match codec.decode(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }
}

#[test]
fn random_garbage_inside_heads_and_bodies_keeps_the_stream_in_step() {
    // Recovery, not only "no panic": random bytes inside start lines,
    // header values and bodies (never in CR, LF, spaces or a Content-Length
    // line, which frame the stream) still give one frame per message, and
    // the untouched message after them is read whole.
    let mut seed = 0x5EED_1234_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut base = stream();
    let garbled = base.len();
    base.extend_from_slice(options(99, "end").as_bytes());
    let expected = decode_in_chunks(&base, base.len());
    assert_eq!(expected.last().map(String::as_str), Some("msg c99 body=3"));
    // Where a byte may change: not whitespace, not on a length line.
    let mut mutable = Vec::new();
    let mut line_start = 0;
    for (i, b) in base.iter().enumerate() {
        if *b == b'\n' {
            line_start = i + 1;
            continue;
        }
        let line = &base[line_start..];
        let framing = line.starts_with(b"l:") || line.starts_with(b"Content-Length:");
        if i < garbled && !framing && !b" \t\r".contains(b) {
            mutable.push(i);
        }
    }
    for round in 0..2_000 {
        let mut data = base.clone();
        for _ in 0..1 + next() % 6 {
            let at = mutable[(next() as usize) % mutable.len()];
            let byte = loop {
                let b = next() as u8;
                if !b" \t\r\n".contains(&b) {
                    break b;
                }
            };
            data[at] = byte;
        }
        let mut codec = SipCodec::with_max(4096);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in data.chunks(1 + (next() % 50) as usize) {
            buf.extend_from_slice(piece);
            while let Some(f) = codec
                .decode(&mut buf)
                .unwrap_or_else(|e| panic!("round {round}: framing lost: {e}"))
            {
                frames.push(f);
            }
        }
        assert!(buf.is_empty(), "round {round}: left over {buf:?}");
        assert_eq!(frames.len(), expected.len(), "round {round}: {frames:?}");
        let SipFrame::Message(last) = &frames[frames.len() - 1] else {
            panic!("round {round}: the last frame is {:?}", frames.last())
        };
        assert_eq!(
            (last.call_id().unwrap(), &last.body[..]),
            ("c99", &b"end"[..]),
            "round {round}"
        );
    }
}
