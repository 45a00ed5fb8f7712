//! api listings have the captured shapes and follow the simulated state:
//! `show channels/calls`, `valet_info`, `conference json_list/list`,
//! `fifo list/count`, `callcenter_config`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

/// Replaces uuids and digit runs, so bodies compare by shape.
fn shape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let is_uuid = b.len() >= i + 36
            && s.is_char_boundary(i + 36)
            && s[i..i + 36].bytes().enumerate().all(|(j, c)| {
                if [8, 13, 18, 23].contains(&j) {
                    c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        if is_uuid {
            out.push('U');
            i += 36;
        } else if b[i].is_ascii_digit() {
            out.push('0');
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[tokio::test]
async fn show_channels_and_calls_follow_the_call() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    let call = sim.call("1000", "1001").await.unwrap();
    let ch = c.api("show channels as json").await.text();
    let v: serde_json::Value = serde_json::from_str(&ch).unwrap();
    assert_eq!(v["row_count"], 2);
    assert_eq!(v["rows"][0]["callstate"], "EARLY");
    assert_eq!(v["rows"][1]["callstate"], "RINGING");
    assert_eq!(v["rows"][1]["call_uuid"], call.0.as_str());
    // Ringing: two call rows, as in capture 03.
    let calls = c.api("show calls as json").await.text();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&calls).unwrap()["row_count"],
        2
    );
    sim.answer(&call).await.unwrap();
    let ch = c.api("show channels as json").await.text();
    let cap = captured("01-auth-and-api.json.txt", "api show channels as json", 1);
    assert_eq!(keys(&ch), keys(&cap));
    let calls = c.api("show calls as json").await.text();
    let cap = captured("01-auth-and-api.json.txt", "api show calls as json", 1);
    assert_eq!(keys(&calls), keys(&cap));
    let v: serde_json::Value = serde_json::from_str(&calls).unwrap();
    assert_eq!(
        (
            v["rows"][0]["uuid"].as_str(),
            v["rows"][0]["callstate"].as_str()
        ),
        (Some(call.0.as_str()), Some("ACTIVE"))
    );
    assert_eq!(c.api("show channels count").await.text(), "\n2 total.\n");
    assert_eq!(c.api("show calls count").await.text(), "\n1 total.\n");
    assert!(
        !calls.ends_with('\n') && !calls.contains(": "),
        "non-empty JSON is compact, no newline"
    );
}

#[tokio::test]
async fn module_listings_have_the_captured_shapes() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    sim.valet_park("1000", "valet_parking_lot", "6001")
        .await
        .unwrap();
    let got = c.api("valet_info").await.text();
    assert_eq!(
        shape(&got),
        shape(&captured("05-valet-park.json.txt", "api valet_info", 0))
    );
    let a = sim.conference_join("1000", "3000").await.unwrap();
    sim.conference_join("1002", "3000").await.unwrap();
    let got = c.api("conference json_list").await.text();
    assert_eq!(
        shape(&got),
        shape(&captured(
            "06-conference.json.txt",
            "api conference json_list",
            0
        ))
    );
    assert!(got.contains(&a.uuid));
    let got = c.api("conference list").await.text();
    assert_eq!(
        shape(&got),
        shape(&captured(
            "06-conference.json.txt",
            "api conference list",
            0
        ))
    );
    sim.fifo_push("1003", "5900").await.unwrap();
    let got = c.api("fifo list").await.text();
    assert_eq!(
        shape(&got),
        shape(&captured("08-fifo.json.txt", "api fifo list", 0))
    );
    let got = c.api("fifo count").await.text();
    assert_eq!(
        shape(&got),
        shape(&captured("08-fifo.json.txt", "api fifo count", 0))
    );
    let q = sim
        .callcenter_enter("1004", "support@default")
        .await
        .unwrap();
    let got = c
        .api("callcenter_config queue list members support@default")
        .await
        .text();
    let cap = captured(
        "07-callcenter.json.txt",
        "api callcenter_config queue list members support@default",
        0,
    );
    assert_eq!(got.lines().next(), cap.lines().next(), "column header");
    assert!(
        got.contains(&q.0) && got.contains("|Waiting|") && got.ends_with("+OK\n"),
        "{got}"
    );
    assert_eq!(
        c.api("callcenter_config queue count members support@default")
            .await
            .text(),
        "1\n"
    );
}
