//! Arbitrary bytes through the ESL decoders and event parsers: nothing may
//! panic, feeding the input in two pieces must give the same frames as
//! feeding it whole, and every frame that re-encodes decodes to itself.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use locus_esl::{EslCodec, Event, Frame, Limits, Message, ServerCodec};
use tokio_util::codec::Decoder;

/// Small caps so that the size checks are reached too.
const LIMITS: Limits = Limits {
    max_header: 4096,
    max_body: 64 * 1024,
};

/// Frames decoded from `data` fed as `data[..split]` then the rest, and
/// whether decoding stopped on an error.
fn decode(data: &[u8], split: usize) -> (Vec<Frame>, bool) {
    let mut codec = EslCodec::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    let failed = codec.decode_eof(&mut buf).is_err();
    (frames, failed)
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    let whole = decode(data, data.len());
    let pieces = decode(data, split);
    assert_eq!(whole, pieces, "split at {split}");

    for frame in whole.0 {
        if let Ok(bytes) = frame.to_bytes() {
            let mut buf = BytesMut::from(&bytes[..]);
            let again = EslCodec::new(LIMITS).decode(&mut buf);
            assert_eq!(again.ok().flatten().as_ref(), Some(&frame));
        }
        let _ = Message::try_from(frame);
    }

    let mut server = ServerCodec::new(LIMITS);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(req)) = server.decode(&mut buf) {
        let _ = req.command().line();
    }

    if let Ok(ev) = Event::from_json(data) {
        let _ = Event::from_json(ev.to_json().as_bytes());
        let _ = ev.to_plain();
    }
    if let Ok(ev) = Event::from_plain(data) {
        let _ = Event::from_plain(ev.to_plain().as_bytes());
        let _ = ev.to_json();
    }
});
