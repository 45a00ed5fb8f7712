//! The built `locus` binary: help, configuration errors (exit 64, one
//! line), `inspect --json` against a populated Redis, and the demo.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_locus");

/// Runs the binary with no inherited `LOCUS_*` settings, within `limit`.
async fn locus(args: &[&str], limit: Duration) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).kill_on_drop(true);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOCUS_")) {
        cmd.env_remove(k);
    }
    tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("locus {args:?} did not finish within {limit:?}"))
        .expect("run locus")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A config file in a fresh temp path, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, body: &str) -> Self {
        let p = std::env::temp_dir().join(format!("locus-cli-{}-{name}.toml", std::process::id()));
        std::fs::write(&p, body).unwrap();
        Self(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn help_names_the_subcommands() {
    let out = locus(&["--help"], WAIT).await;
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["agent", "inspect", "demo", "node", "--check-config"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}

#[tokio::test]
async fn a_bad_config_value_exits_64_with_one_line() {
    let cases = [
        (
            "lease",
            "[agent]\nlease = \"1s\"\nrefresh = \"2s\"\n",
            "lease",
        ),
        ("node-id", "[agent]\nnode_id = \"fs:1\"\n", "node id"),
        ("weight", "[agent]\nweight = \"heavy\"\n", "weight"),
        ("unknown", "[agent]\nnode_idd = \"fs1\"\n", "node_idd"),
    ];
    for (name, body, hint) in cases {
        let file = ConfigFile::new(name, body);
        let out = locus(&["--check-config", "--config", file.path(), "agent"], WAIT).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: one line, got {err:?}"
        );
        assert!(err.starts_with("locus: "), "{name}: {err}");
        assert!(err.contains(hint), "{name}: {err:?} should mention {hint}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn a_good_config_is_printed_with_secrets_redacted() {
    let file = ConfigFile::new(
        "good",
        "[redis]\nurl = \"redis://:hunter2@127.0.0.1:6379/0\"\n[agent.esl]\npassword = \"s3cret-esl\"\n",
    );
    let out = locus(&["--check-config", "--config", file.path(), "agent"], WAIT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("node_id") && printed.contains("127.0.0.1:6379"));
    assert!(
        !printed.contains("hunter2"),
        "redis password leaked: {printed}"
    );
    assert!(
        !printed.contains("s3cret-esl"),
        "esl password leaked: {printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_json_calls_reads_a_populated_redis() {
    let farm = start_farm(1).await;
    let (id, sim) = (&farm.nodes[0].id, &farm.nodes[0].sim);
    let call = sim.call("1000", "1001").await.unwrap();
    wait_for(&farm.store, "the call", |f| {
        calls(f, id).contains_key(&call.0)
    })
    .await;
    // The called party's group arrives with a later event than the call.
    settle(&farm.store, sim, id).await;
    let url = farm.redis.url();
    let out = locus(&["inspect", "--redis", &url, "--json", "calls"], WAIT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    let rows = rows.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["uuid"], call.0.as_str());
    assert_eq!(row["node"], "fs1");
    assert_eq!(row["state"], "ringing");
    assert_eq!(row["to"], "1001");
    assert_eq!(row["group"], "techsupport");
    // The same through the table form of another view.
    let out = locus(&["inspect", "--redis", &url, "ringing"], WAIT).await;
    assert!(out.status.success());
    let t = text(&out.stdout);
    assert!(
        t.starts_with("NODE") && t.contains(&dkey("1001")) && t.contains(&call.0),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_registrations_shows_the_location_service() {
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let later = locus_schema::now_ms() + 300_000;
    let b = |contact: &str, nat: bool, unreachable: bool| locus_schema::Binding {
        contact: contact.into(),
        received: "198.51.100.7:40000".into(),
        transport: "udp".into(),
        proxy: "edge1".into(),
        socket: "sip:10.0.0.1:5060".into(),
        flow: "u~198.51.100.7:40000~0~0123abcd".into(),
        path: vec![],
        expires_ms: later,
        user_agent: Some("Yealink T46".into()),
        node: None,
        nat,
        unreachable,
        instance: None,
        reg_id: None,
        call_id: "c1".into(),
        cseq: 2,
    };
    store
        .put_binding(
            "farm.test",
            "1000",
            &b("sip:1000@192.168.1.20:5060", true, false),
        )
        .await
        .unwrap();
    store
        .put_binding(
            "farm.test",
            "1001",
            &b("sip:1001@198.51.100.8:5060", false, true),
        )
        .await
        .unwrap();
    let url = redis.url();
    let out = locus(
        &["inspect", "--redis", &url, "--json", "registrations"],
        WAIT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["aor"], "1000@farm.test");
    assert_eq!(rows[0]["nat"], "yes");
    assert_eq!(rows[0]["reachable"], "yes");
    assert_eq!(rows[0]["proxy"], "edge1");
    assert_eq!(rows[0]["source"], "198.51.100.7:40000");
    assert_eq!(
        rows[0]["flow"],
        "u~198.51.100.7:40000~0 via sip:10.0.0.1:5060"
    );
    assert_eq!(rows[0]["user_agent"], "Yealink T46");
    assert_eq!(rows[1]["aor"], "1001@farm.test");
    assert_eq!(rows[1]["reachable"], "no");
    // One AOR, as a table.
    let out = locus(
        &[
            "inspect",
            "--redis",
            &url,
            "registrations",
            "1001@farm.test",
        ],
        WAIT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.starts_with("AOR") && t.contains("1001@farm.test"), "{t}");
    assert!(!t.contains("1000@farm.test"), "{t}");
    let out = locus(
        &["inspect", "--redis", &url, "registrations", "nobody"],
        WAIT,
    )
    .await;
    assert!(!out.status.success(), "an AOR without @ must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_the_end_against_a_given_redis() {
    let redis = start_redis().await;
    let out = locus(&["demo", "--redis", &redis.url()], Duration::from_secs(60)).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(stdout.contains("$ locus inspect groups"), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("NODE") && l.contains("GROUP") && l.contains("CALLS"))
        .unwrap_or_else(|| panic!("no groups table in: {stdout}"));
    assert!(!header.is_empty());
    assert!(stdout.contains(&dkey("techsupport")), "{stdout}");
    assert!(stdout.contains("Demo done"), "{stdout}");
    check_demo_sip(&stdout);
    // It used our Redis (and left the farm idle there).
    let store = open_store(&redis.url()).await;
    let farm = store.read_farm().await.unwrap();
    assert!(
        !farm.nodes.is_empty(),
        "the demo did not write to the given redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_the_memory_store_too() {
    let out = locus(&["demo", "--redis", "memory://"], Duration::from_secs(60)).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(stdout.contains("store memory://"), "{stdout}");
    check_demo_sip(&stdout);
}

/// The box named after `-> ` in the demo's line for `step` (`INVITE 1014 -> *8`).
fn landed<'a>(stdout: &'a str, step: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix(step))
        .map(|rest| {
            let rest = rest
                .strip_prefix(" -> ")
                .unwrap_or_else(|| panic!("{step}: {rest}"));
            rest.split([',', ':', ' ']).next().unwrap()
        })
        .collect()
}

/// The SIP part of the demo: every phone registered (each line names a
/// box), the call was answered, and each farm rule put its requests where
/// it must: `*8` on the ringing call's box, the retrieve on the parking
/// box, both room joiners on one box.
fn check_demo_sip(stdout: &str) {
    assert!(stdout.contains("proxy: SIP udp 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("/metrics"), "{stdout}");
    for user in 1010..=1018 {
        let line = stdout
            .lines()
            .find(|l| l.trim().starts_with(&format!("REGISTER {user} -> ")))
            .unwrap_or_else(|| panic!("no REGISTER line for {user}: {stdout}"));
        assert!(
            (line.contains("-> fs1: 200") || line.contains("-> fs2: 200")),
            "{line}"
        );
    }
    let call = landed(stdout, "INVITE 1010 -> 1011");
    assert_eq!(call.len(), 1, "{stdout}");
    assert!(["fs1", "fs2"].contains(&call[0]), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("INVITE 1010 -> 1011"))
        .unwrap();
    assert!(line.contains(": 200"), "{line}");
    let pick = landed(stdout, "INVITE 1014 -> *8");
    let pick_line = stdout.lines().find(|l| l.contains("-> *8 ->")).unwrap();
    let rings_on = pick_line
        .split("rings on ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("{pick_line}"));
    assert_eq!(
        pick,
        [rings_on],
        "*8 must land where the group rings: {pick_line}"
    );
    assert!(pick_line.contains("): 200"), "{pick_line}");
    let valet = [
        landed(stdout, "INVITE 1015 -> 6001"),
        landed(stdout, "INVITE 1016 -> 6001"),
    ];
    assert_eq!(valet[0].len(), 1, "{stdout}");
    assert_eq!(
        valet[0], valet[1],
        "the retrieve lands on the parking box: {stdout}"
    );
    let room = [
        landed(stdout, "INVITE 1017 -> 3001"),
        landed(stdout, "INVITE 1018 -> 3001"),
    ];
    assert_eq!(room[0].len(), 1, "{stdout}");
    assert_eq!(room[0], room[1], "the joiners meet on one box: {stdout}");
    assert!(
        stdout.contains("farm.test/3001  2"),
        "the room table shows both: {stdout}"
    );
    for l in stdout.lines().filter(|l| l.trim().starts_with("INVITE ")) {
        assert!(l.contains(": 200"), "every scripted call is answered: {l}");
    }
    // 9 REGISTERs and 7 phone INVITEs (1012's to 1013 included), each
    // challenged by its box, each retry pinned to it.
    assert!(
        stdout.contains("the proxy put 16 retries back on the box that challenged them"),
        "{stdout}"
    );
}

/// Item 12: `--udp` alone opens TCP on that address and nowhere else (the
/// embedded default used to add TCP on 0.0.0.0:5060).
#[tokio::test]
async fn udp_alone_listens_on_tcp_at_the_same_address_only() {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["proxy", "--redis", "memory://", "--udp", "127.0.0.5:0"])
        .args(["--http", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOCUS_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("run locus proxy");
    let pid = child.id().expect("pid");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // Every listener is bound before "proxy started" is logged.
    let mut seen = String::new();
    tokio::time::timeout(WAIT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            seen.push_str(&l);
            seen.push('\n');
            if l.contains("proxy started") {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no 'proxy started' within {WAIT:?}: {seen}"));
    assert!(seen.contains("proxy started"), "proxy exited: {seen}");
    let found = locus_schema::testing::ports::listening(pid);
    let of = |proto: &str| -> Vec<std::net::SocketAddr> {
        found
            .iter()
            .filter(|(p, _)| p.starts_with(proto))
            .map(|(_, a)| *a)
            .collect()
    };
    let udp = of("udp");
    let [sip] = udp[..] else {
        panic!("one UDP listener expected: {found:?}")
    };
    assert_eq!(sip.ip().to_string(), "127.0.0.5", "{found:?}");
    // SIP over TCP on the UDP address, and the HTTP listener; nothing else
    // (in particular nothing on 0.0.0.0 or [::]).
    let tcp = of("tcp");
    assert_eq!(tcp.len(), 2, "{found:?}");
    assert!(tcp.contains(&sip), "no TCP on {sip}: {found:?}");
    assert!(
        tcp.iter().any(|a| a.ip().to_string() == "127.0.0.1"),
        "http: {found:?}"
    );
    let _ = child.kill().await;
}
