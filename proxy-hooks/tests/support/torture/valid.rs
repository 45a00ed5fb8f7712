//! Valid but weird requests (RFC 4475 3.1.1, 3.3): accepted, forwarded.

use super::{Case, accept, request};

const SDP: &str = "v=0\r\no=ringo 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";

/// Valid but weird: LWS and folding everywhere RFC 3261 allows them,
/// escapes, long values, compact and odd-case names, `tel:` numbers.
pub fn valid() -> Vec<Case> {
    let tortuous = format!(
        "INVITE sip:ringo@farm.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:ringo@farm.example.com\r\n\
from   : \"R. \\\"Ringo\\\" \\\\Starr\\\\\"  <sip:starr@example.org>\r\n  ;\r\n  tag = 77ax\r\n\
MaX-fOrWaRdS: 0068\r\n\
i: tortuous\r\n\
Content-Length   : {}\r\n\
cseq: 0009\r\n  INVITE\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    LOCAL;branch=z9hG4bKtortuous\r\n\
v:  SIP  / 2.0  / TCP     spindle.example.org   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n \
SIP  /    2.0   / UDP  192.0.2.33   ; branch=\r\n z9hG4bK30239\r\n\
s  :\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
c: application/sdp\r\n\
m:\"Quoted string \\\"\\\"\" <sip:ringo@192.0.2.10> ; newparam =\r\n      newvalue ;\r\n  \
secondparam ; q = 0.33\r\n\r\n{SDP}",
        SDP.len()
    );
    let long_user = "u".repeat(300);
    let long_value = "x".repeat(8000);
    let mut vias = String::new();
    for i in 0..30 {
        vias.push_str(&format!(
            "Via: SIP/2.0/UDP 192.0.2.{i}:5060;branch=z9hG4bKlong{i}\r\n"
        ));
    }
    let long = request(
        "long",
        "INVITE",
        &format!(
            "sip:{long_user}@farm.example.com;x-long={}",
            "p".repeat(500)
        ),
        &format!(
            "{vias}X-Long-Value: {long_value}\r\nSubject: {}\r\n",
            "s".repeat(2000)
        ),
        "",
    )
    .replacen(
        "From: <sip:starr@example.org>",
        &format!("From: \"{}\" <sip:starr@example.org>", "D".repeat(200)),
        1,
    );
    let bare_lf =
        request("barelf", "OPTIONS", "sip:ringo@farm.example.com", "", "").replace("\r\n", "\n");
    let mut trailing = request("trailing", "INVITE", "sip:ringo@farm.example.com", "", "");
    trailing.push_str(&request(
        "trailing2",
        "BYE",
        "sip:x@farm.example.com",
        "",
        "",
    ));
    vec![
        accept("tortuous", tortuous),
        accept(
            "escapes",
            request(
                "escapes",
                "INVITE",
                "sip:%61lice%20smith;ext=%00@farm.example.com",
                "Contact: <sip:bob@192.0.2.10;x-note=a%2Cb>\r\n",
                "",
            )
            .replacen(
                "From: <sip:starr@example.org>",
                "From: \"%Z%45 is no escape\" <sip:bob%40home@example.org>",
                1,
            ),
        ),
        accept("long", long),
        accept(
            "semiuser",
            request(
                "semiuser",
                "MESSAGE",
                "sip:user;par=u%40example.net@farm.example.com",
                "Content-Type: text/plain\r\n",
                "hello",
            ),
        ),
        accept(
            "telinvite",
            request("telinvite", "INVITE", "tel:+390612345678", "", "")
                .replacen(
                    "To: <sip:ringo@farm.example.com>",
                    "To: <tel:+390612345678>",
                    1,
                )
                .replacen(
                    "From: <sip:starr@example.org>",
                    "From: \"Cell\" <tel:+390699999;phone-context=+39>",
                    1,
                ),
        ),
        accept(
            "telmessage",
            request(
                "telmessage",
                "MESSAGE",
                "tel:7042;phone-context=farm.example.com",
                "",
                "hi",
            ),
        ),
        accept(
            "newmethod",
            request(
                "newmethod",
                "NEWMETHOD",
                "sip:ringo@farm.example.com",
                "Via: SIP/2.0/SCTP 192.0.2.1;branch=z9hG4bKs, SIP/2.0/TLS-SCTP 192.0.2.2;branch=z9hG4bKt\r\n\
Via: SIP/2.0/UNKNOWN [2001:db8::9]:5070;branch=z9hG4bKu\r\n",
                "",
            ),
        ),
        accept(
            "nolws",
            request("nolws", "INVITE", "sip:ringo@farm.example.com", "", "")
                .replacen(
                    "From: <sip:starr@example.org>;tag=nolws",
                    "From:\"caller\"<sip:starr@example.org>;tag=nolws",
                    1,
                )
                .replacen("To: <sip:ringo", "To:<sip:ringo", 1),
        ),
        accept("barelf", bare_lf),
        accept("trailing", trailing),
        accept(
            "shortlength",
            request(
                "shortlength",
                "MESSAGE",
                "sip:ringo@farm.example.com",
                "Content-Type: text/plain\r\nContent-Length: 5\r\n",
                "helloWORLD",
            ),
        ),
        accept(
            "instance",
            request(
                "instance",
                "INVITE",
                "sip:ringo@farm.example.com",
                "Contact: <sip:ringo@[2001:db8::10]:5062;transport=tcp>;\
+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1\r\n",
                "",
            ),
        ),
    ]
}
