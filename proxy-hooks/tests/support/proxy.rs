//! Harness for the proxy core tests: a proxy on port 0 with a given
//! router, sipp UACs/UASes on free ports (killed on drop), raw UDP
//! requests. Tests are skipped when sipp is not installed.

#![allow(dead_code)] // each test binary uses part of it
#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use locus_proxy::proxy::{CoreConfig, Dest, Proxy, ProxyStats, Router, Target};
use locus_proxy::sip::{SipMessage, SipTransport, TransportConfig, Uri};
use locus_schema::testing::ports;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

pub mod raw;

pub fn sipp() -> Option<PathBuf> {
    locus_schema::testing::sipp()
}

/// A running proxy; cancelled on drop.
pub struct Running {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub stats: Arc<ProxyStats>,
    pub cancel: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Test timers: quick retransmissions and failover.
pub fn fast() -> CoreConfig {
    CoreConfig {
        t1: Duration::from_millis(100),
        t4: Duration::from_millis(500),
        invite_timeout: Duration::from_millis(300),
        ..CoreConfig::default()
    }
}

/// A proxy on `ip` (UDP and TCP, port 0).
pub async fn start(ip: &str, cfg: CoreConfig, router: Arc<dyn Router>) -> Option<Running> {
    let any: SocketAddr = SocketAddr::new(ip.parse().unwrap(), 0);
    let cancel = CancellationToken::new();
    let tcfg = TransportConfig {
        udp: vec![any],
        tcp: Some(vec![any]),
        ..Default::default()
    };
    let (t, rx) = match SipTransport::bind(tcfg, cancel.clone()).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("skipping: cannot bind {ip}: {e}");
            return None;
        }
    };
    let (udp, tcp) = (t.udp_addrs()[0], t.tcp_addrs()[0]);
    let proxy = Proxy::new(cfg, t, router);
    let stats = proxy.stats();
    let c = cancel.clone();
    tokio::spawn(async move { proxy.run(rx, c).await });
    Some(Running {
        udp,
        tcp,
        stats,
        cancel,
    })
}

pub fn scenario(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip")
        .join(name);
    p.to_str().unwrap().to_string()
}

/// A port nothing listens on right now, for a destination that must not
/// answer; never one to hand to a process to bind (see [`uas`]).
pub fn closed_port(ip: &str) -> u16 {
    ports::free_port(ip.parse().unwrap()).unwrap()
}

/// A sipp UAS; killed on drop.
pub struct Uas {
    pub child: Child,
    pub port: u16,
    pub ip: String,
    pub tcp: bool,
}

impl Uas {
    /// Its SIP URI.
    pub fn uri(&self) -> Uri {
        let host = if self.ip.contains(':') {
            format!("[{}]", self.ip)
        } else {
            self.ip.clone()
        };
        let t = if self.tcp { ";transport=tcp" } else { "" };
        Uri::parse(&format!("sip:{host}:{}{t}", self.port)).unwrap()
    }

    /// A target for it.
    pub fn target(&self) -> Target {
        Target {
            dest: Dest::Uri(self.uri()),
            ruri: None,
            node: None,
            route: Vec::new(),
        }
    }

    /// Waits for it to finish its `-m` calls; panics with its stderr on failure.
    pub async fn finish(self) {
        let out = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .expect("sipp UAS did not finish")
            .unwrap();
        assert!(
            out.status.success(),
            "sipp UAS failed: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts a sipp UAS with `scenario` on a free port of `ip`, for `m` calls;
/// returns once it holds the port, on another one if it was taken
/// (`locus_schema::testing::ports`).
pub async fn uas(scenario_name: &str, ip: &str, tcp: bool, m: u32, extra: &[&str]) -> Uas {
    let sipp = sipp().unwrap();
    let make = |port: u16| {
        let mut cmd = Command::new(&sipp);
        cmd.args([
            "-sf",
            &scenario(scenario_name),
            "-t",
            if tcp { "t1" } else { "u1" },
        ])
        .args(["-i", ip, "-p", &port.to_string(), "-m", &m.to_string()])
        .args([
            "-timeout",
            "30s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-error_file",
            "/dev/stderr",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        cmd
    };
    let (spawned, port) =
        ports::spawn_bound(ip.parse().unwrap(), None, Duration::from_secs(10), make)
            .await
            .unwrap();
    let child = match spawned {
        ports::Spawned::Listening(child) => child,
        ports::Spawned::Exited(out) => panic!(
            "sipp UAS ended before it bound {port}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    Uas {
        child,
        port,
        ip: ip.to_string(),
        tcp,
    }
}

/// Runs a sipp UAC with `scenario` against `target` for `m` calls (again
/// on a fresh port if its port was taken).
pub async fn uac(
    scenario_name: &str,
    target: SocketAddr,
    tcp: bool,
    m: u32,
    extra: &[&str],
) -> Output {
    let sipp = sipp().unwrap();
    let ip = target.ip().to_string();
    let run = |port: u16| {
        let mut cmd = Command::new(&sipp);
        cmd.arg(target.to_string())
            .args([
                "-sf",
                &scenario(scenario_name),
                "-t",
                if tcp { "t1" } else { "u1" },
            ])
            .args(["-i", &ip, "-p", &port.to_string(), "-m", &m.to_string()])
            .args([
                "-r",
                "20",
                "-l",
                "10",
                "-timeout",
                "30s",
                "-timeout_error",
                "-nostdin",
            ])
            .args(["-trace_err", "-error_file", "/dev/stderr"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        async move {
            tokio::time::timeout(Duration::from_secs(40), cmd.output())
                .await
                .expect("sipp UAC did not finish")
                .unwrap()
        }
    };
    ports::with_port_async(target.ip(), None, run, |out: &Output| {
        !out.status.success() && ports::clashed(&String::from_utf8_lossy(&out.stderr))
    })
    .await
    .unwrap()
}

/// Asserts a sipp run succeeded.
pub fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "sipp {what} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends raw requests over UDP from one fresh socket (`LOCAL` in the text
/// becomes its address, `\n` CRLF) and collects the responses until a
/// final one (or 3 s of silence).
pub async fn raw_udp_all(to: SocketAddr, texts: &[String]) -> Vec<SipMessage> {
    let bind: SocketAddr = if to.is_ipv4() {
        "127.0.0.1:0".parse().unwrap()
    } else {
        "[::1]:0".parse().unwrap()
    };
    let sock = tokio::net::UdpSocket::bind(bind).await.unwrap();
    let local = sock.local_addr().unwrap();
    for text in texts {
        let text = text
            .replace("LOCAL", &local.to_string())
            .replace('\n', "\r\n");
        sock.send_to(text.as_bytes(), to).await.unwrap();
    }
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::new();
    while let Ok(r) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await {
        let (n, _) = r.unwrap();
        let m = SipMessage::parse(&buf[..n]).unwrap();
        let done = m.status().is_some_and(|s| s >= 200);
        out.push(m);
        if done {
            break;
        }
    }
    out
}

/// The first response to one raw request over UDP.
pub async fn raw_udp(to: SocketAddr, text: &str) -> Option<SipMessage> {
    raw_udp_all(to, &[text.to_string()])
        .await
        .into_iter()
        .next()
}

/// The status of the final response to one raw request over UDP.
pub async fn final_status(to: SocketAddr, text: &str) -> Option<u16> {
    raw_udp_all(to, &[text.to_string()])
        .await
        .last()
        .and_then(|m| m.status())
        .filter(|s| *s >= 200)
}

/// Polls `f` until true, up to 5 s.
pub async fn until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
