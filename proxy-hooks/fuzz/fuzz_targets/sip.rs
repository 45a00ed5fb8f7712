//! Any bytes through the SIP datagram parser, every accessor the proxy
//! reads (faults and `tel:` included), the reply builder, the
//! received/rport stamp, the re-serialiser, and the TCP codec (whole and
//! byte by byte, answers to framing errors included): errors are fine,
//! panics are not.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use locus_proxy::sip::{Datagram, SipCodec, parse_datagram};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    if let Ok(Datagram::Message(mut msg)) = parse_datagram(data) {
        let _ = msg.top_via();
        let _ = msg.vias();
        let _ = msg.from();
        let _ = msg.to();
        let _ = msg.call_id();
        let _ = msg.cseq();
        let _ = msg.contacts();
        let _ = msg.replaces();
        let _ = msg.routes();
        let _ = msg.record_routes();
        let _ = msg.content_length();
        let _ = msg.fault();
        let _ = msg.request_uri().map(|u| (u.is_tel(), u.to_string()));
        let _ = msg.decrement_max_forwards();
        if msg.is_request() {
            let _ = msg.reply(400, "Bad Request", Some("t")).to_bytes();
            let _ = msg.stamp_received("192.0.2.1:5060".parse().expect("literal"));
        }
        let again = msg.to_bytes();
        let _ = parse_datagram(&again);
    }
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::from(data);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                if let Some(answer) = e.answer() {
                    let _ = parse_datagram(answer);
                }
                break;
            }
        }
    }
    let mut codec = SipCodec::default();
    let mut buf = BytesMut::new();
    for b in data {
        buf.extend_from_slice(&[*b]);
        match codec.decode(&mut buf) {
            Ok(_) => {}
            Err(_) => break,
        }
    }
});
