//! SIP-over-TCP codec: whole, chunked and byte-by-byte streams, keep-alives
//! between messages, size cap, missing Content-Length, malformed but framed.

#![allow(clippy::unwrap_used)] // tests may unwrap

use bytes::{Bytes, BytesMut};
use locus_proxy::sip::{KeepAlive, MAX_MESSAGE, SipCodec, SipError, SipFrame};
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

#[test]
fn missing_content_length_is_a_framing_error() {
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::from("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n");
    assert!(matches!(
        codec.decode(&mut buf),
        Err(SipError::Missing("Content-Length"))
    ));
    let mut buf = BytesMut::from("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
    assert!(codec.decode(&mut buf).is_err());
}

#[test]
fn size_cap() {
    let mut codec = SipCodec::default();
    // A body that would exceed the cap is refused before it is buffered.
    let mut buf = BytesMut::from(
        format!("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: {MAX_MESSAGE}\r\n\r\n").as_str(),
    );
    assert!(matches!(
        codec.decode(&mut buf),
        Err(SipError::TooLarge { .. })
    ));
    // A head that never ends is refused once it passes the cap.
    let mut codec = SipCodec::with_max(1024);
    let mut buf = BytesMut::from("OPTIONS sip:a@b SIP/2.0\r\n");
    let mut result = Ok(None);
    for _ in 0..100 {
        buf.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        result = codec.decode(&mut buf);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(SipError::TooLarge { cap: 1024 })));
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
