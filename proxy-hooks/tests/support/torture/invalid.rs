//! Invalid requests (RFC 4475 3.1.2, 3.3) and their answers.

use super::{Case, answer, request};

/// Invalid requests and the answer RFC 3261 gives them.
pub fn invalid() -> Vec<Case> {
    let plain = |name, method, ruri| request(name, method, ruri, "", "");
    let edit = |name: &'static str, from: &str, to: &str| {
        plain(name, "INVITE", "sip:ringo@farm.example.com").replacen(from, to, 1)
    };
    let body = |name, extra: &str, body: &str| {
        request(name, "MESSAGE", "sip:ringo@farm.example.com", extra, body)
    };
    vec![
        answer(
            "version",
            505,
            true,
            plain("version", "OPTIONS", "sip:ringo@farm.example.com").replacen(
                "SIP/2.0\r\n",
                "SIP/7.0\r\n",
                1,
            ),
        ),
        answer(
            "unkscheme",
            416,
            true,
            plain("unkscheme", "OPTIONS", "nobodyKnowsThisScheme:opaque"),
        ),
        answer(
            "imscheme",
            416,
            true,
            plain("imscheme", "INVITE", "im:ringo@example.org"),
        ),
        answer(
            "novelscheme",
            416,
            true,
            plain("novelscheme", "OPTIONS", "soap.beep://192.0.2.1:3002"),
        ),
        answer(
            "telsubscribe",
            416,
            false,
            plain("telsubscribe", "SUBSCRIBE", "tel:+3906123"),
        ),
        answer(
            "telregister",
            416,
            false,
            plain("telregister", "REGISTER", "tel:+3906123"),
        ),
        answer(
            "lwsruri",
            400,
            true,
            plain("lwsruri", "INVITE", "sip:ringo@farm.example.com; lr"),
        ),
        answer(
            "ltgtruri",
            400,
            true,
            plain("ltgtruri", "INVITE", "<sip:ringo@farm.example.com>"),
        ),
        answer(
            "doublesp",
            400,
            true,
            edit(
                "doublesp",
                "INVITE sip:ringo@farm.example.com SIP/2.0",
                "INVITE  sip:ringo@farm.example.com  SIP/2.0",
            ),
        ),
        answer(
            "trailingsp",
            400,
            true,
            edit("trailingsp", "SIP/2.0\r\n", "SIP/2.0 \r\n"),
        ),
        answer(
            "escheaders",
            400,
            true,
            plain(
                "escheaders",
                "INVITE",
                "sip:ringo@farm.example.com?Route=%3Csip:evil.example.net%3E",
            ),
        ),
        answer(
            "quoteruri",
            400,
            true,
            plain("quoteruri", "INVITE", "sip:rin\"go@farm.example.com"),
        ),
        answer(
            "pipe",
            400,
            true,
            plain("pipe", "INVITE", "sip:ringo@farm|example.com"),
        ),
        answer(
            "nonascii",
            400,
            true,
            plain("nonascii", "INVITE", "sip:ring\u{e9}@farm.example.com"),
        ),
        answer(
            "badescape",
            400,
            true,
            plain("badescape", "INVITE", "sip:ringo%G1@farm.example.com"),
        ),
        answer(
            "quotbal",
            400,
            false,
            edit(
                "quotbal",
                "From: <sip:starr@example.org>",
                "From: \"Ringo <sip:starr@example.org>",
            ),
        ),
        answer(
            "angleto",
            400,
            false,
            edit(
                "angleto",
                "To: <sip:ringo@farm.example.com>",
                "To: <sip:ringo@farm.example.com",
            ),
        ),
        answer(
            "angleto2",
            400,
            false,
            edit(
                "angleto2",
                "To: <sip:ringo@farm.example.com>",
                "To: sip:ringo@farm.example.com>",
            ),
        ),
        answer(
            "quotcontact",
            400,
            false,
            edit(
                "quotcontact",
                "Max-Forwards",
                "Contact: \"Ringo <sip:r@192.0.2.10>\r\nMax-Forwards",
            ),
        ),
        answer(
            "anglecontact",
            400,
            false,
            edit(
                "anglecontact",
                "Max-Forwards",
                "Contact: <sip:r@192.0.2.10;transport=udp\r\nMax-Forwards",
            ),
        ),
        answer(
            "negative",
            400,
            true,
            body("negative", "Content-Length: -999\r\n", "abc"),
        ),
        answer(
            "nonnumeric",
            400,
            true,
            body("nonnumeric", "Content-Length: ten\r\n", "abc"),
        ),
        answer(
            "overflow",
            400,
            true,
            body(
                "overflow",
                "Content-Length: 18446744073709551616\r\n",
                "abc",
            ),
        ),
        answer(
            "toolong",
            400,
            true,
            body("toolong", "Content-Length: 9999\r\n", "abc"),
        ),
        answer(
            "conflicting",
            400,
            true,
            body("conflicting", "Content-Length: 4\r\nl: 5\r\n", "abcdef"),
        ),
        answer(
            "twocallids",
            400,
            false,
            edit("twocallids", "CSeq:", "Call-ID: other\r\nCSeq:"),
        ),
        answer(
            "twofroms",
            400,
            false,
            edit(
                "twofroms",
                "Max-Forwards",
                "f: <sip:x@example.org>;tag=2\r\nMax-Forwards",
            ),
        ),
        answer(
            "bigmaxfwd",
            400,
            false,
            edit("bigmaxfwd", "Max-Forwards: 70", "Max-Forwards: 300"),
        ),
        answer(
            "bigcseq",
            400,
            false,
            edit("bigcseq", "CSeq: 1 INVITE", "CSeq: 2147483648 INVITE"),
        ),
        answer(
            "nocolon",
            400,
            true,
            edit(
                "nocolon",
                "Max-Forwards",
                "This line has no colon\r\nMax-Forwards",
            ),
        ),
    ]
}
