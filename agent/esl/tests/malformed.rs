//! Bad input never panics or hangs the codec: it asks for more bytes when a
//! message is merely incomplete, and returns a typed error otherwise.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use locus_esl::{EslCodec, EslError, Frame, Limits, ServerCodec};
use tokio_util::codec::{Decoder, Encoder};

fn decode(input: &[u8]) -> Result<Option<Frame>, EslError> {
    EslCodec::default().decode(&mut BytesMut::from(input))
}

#[test]
fn missing_colon_is_malformed_header() {
    let err = decode(b"Content-Type command/reply\n\n").unwrap_err();
    assert!(matches!(err, EslError::MalformedHeader(_)), "{err}");
    let err = decode(b": no name\n\n").unwrap_err();
    assert!(matches!(err, EslError::MalformedHeader(_)), "{err}");
    assert!(err.is_fatal());
}

#[test]
fn bad_content_length_is_an_error() {
    for cl in ["abc", "-1", "", "12x", "1 2", "99999999999999999999999999"] {
        let input = format!("Content-Type: api/response\nContent-Length: {cl}\n\nbody");
        let err = decode(input.as_bytes()).unwrap_err();
        assert!(matches!(err, EslError::BadContentLength(_)), "{cl}: {err}");
    }
}

#[test]
fn oversized_body_is_refused_before_reading_it() {
    let mut codec = EslCodec::new(Limits {
        max_header: 1024,
        max_body: 100,
    });
    let mut buf = BytesMut::from(&b"Content-Length: 101\nContent-Type: text/event-json\n\n"[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            EslError::BodyTooLarge {
                len: 101,
                limit: 100
            }
        ),
        "{err}"
    );
    // Exactly at the cap is fine.
    let mut ok = BytesMut::from(&b"Content-Length: 100\n\n"[..]);
    ok.extend_from_slice(&[b'x'; 100]);
    let frame = EslCodec::new(Limits {
        max_header: 1024,
        max_body: 100,
    })
    .decode(&mut ok)
    .unwrap()
    .unwrap();
    assert_eq!(frame.body.unwrap().len(), 100);
}

#[test]
fn oversized_header_block_is_refused_without_a_blank_line() {
    let limits = Limits {
        max_header: 64,
        max_body: 1024,
    };
    let mut codec = EslCodec::new(limits);
    let mut buf = BytesMut::new();
    let mut err = None;
    // A header that never ends: fed line by line, must fail once past the cap.
    for i in 0..100 {
        buf.extend_from_slice(format!("X-{i}: y\n").as_bytes());
        match codec.decode(&mut buf) {
            Ok(None) => {}
            Ok(Some(f)) => panic!("unexpected frame {f:?}"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(err, Some(EslError::HeaderTooLarge { limit: 64 })),
        "{err:?}"
    );
    // A complete block over the cap fails too.
    let long = format!("Content-Type: {}\n\n", "x".repeat(80));
    let err = EslCodec::new(limits).decode(&mut BytesMut::from(long.as_bytes()));
    assert!(matches!(err, Err(EslError::HeaderTooLarge { .. })));
}

#[test]
fn garbage_bytes_are_errors_not_panics() {
    let cases: [&[u8]; 4] = [
        b"\xff\xfe\x00garbage\n\n",
        b"\x00\x01\x02\x03\n\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"Content-Type: a\xffb\n\n",
    ];
    for input in cases {
        assert!(decode(input).is_err(), "{input:?}");
    }
}

#[test]
fn truncated_stream_needs_more_data_then_fails_at_eof() {
    let full = b"Content-Type: api/response\nContent-Length: 10\n\n0123456789";
    for cut in 1..full.len() {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::from(&full[..cut]);
        assert!(codec.decode(&mut buf).unwrap().is_none(), "cut {cut}");
        let err = codec.decode_eof(&mut buf).unwrap_err();
        assert!(
            matches!(err, EslError::Truncated { .. }),
            "cut {cut}: {err}"
        );
    }
    let frame = decode(full).unwrap().unwrap();
    assert_eq!(frame.body_text(), "0123456789");
}

#[test]
fn crlf_and_stray_blank_lines_are_accepted() {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::from(
        &b"\r\n\nContent-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\nContent-Type: auth/request\n\n"[..],
    );
    let a = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(a.reply_text(), Some("+OK accepted"));
    let b = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(b.content_type(), "auth/request");
    assert!(buf.is_empty());
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn header_values_stay_raw() {
    let f = decode(b"Content-Type: command/reply\nReply-Text: +OK a%20b: c\n\n")
        .unwrap()
        .unwrap();
    assert_eq!(f.reply_text(), Some("+OK a%20b: c"));
    assert_eq!(f.header("reply-text"), f.reply_text());
}

#[test]
fn encoder_refuses_forged_frames() {
    let mut codec = ServerCodec::default();
    let mut out = BytesMut::new();
    let forged = Frame::command_reply("+OK\n\nContent-Type: auth/request", None);
    assert!(matches!(
        codec.encode(&forged, &mut out),
        Err(EslError::LineBreak(_))
    ));
    let mut lying = Frame::api_response("abc");
    lying.headers[1].1 = "5".into();
    assert!(matches!(
        codec.encode(&lying, &mut out),
        Err(EslError::LengthMismatch)
    ));
    assert!(out.is_empty());
}

#[test]
fn server_codec_reads_sendmsg_headers_and_body() {
    let mut codec = ServerCodec::default();
    let mut buf = BytesMut::from(
        &b"sendmsg 1234\ncall-command: execute\nexecute-app-name: playback\nContent-Length: 3\n\nabcapi status\n\n"[..],
    );
    let a = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(a.line, "sendmsg 1234");
    assert_eq!(a.headers[0], ("call-command".into(), "execute".into()));
    assert_eq!(a.body.as_deref(), Some(&b"abc"[..]));
    let b = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(b.command(), locus_esl::Command::Api("status".into()));
}
