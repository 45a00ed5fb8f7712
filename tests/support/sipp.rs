//! Real `sipp` for the farm tests: one bounded run (`-m`, `-timeout`, an
//! outer timeout, killed on drop) of a scenario from `tests/sip/`, reporting
//! its exit status and the successful/failed call counts of its statistics.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use locus_schema::testing::ports;
use tokio::process::{Child, Command};

/// The sipp binary (CI installs package `sip-tester`); a missing one fails
/// the test unless `LOCUS_SKIP_SIPP=1` (`locus_schema::testing::sipp`).
pub fn sipp_bin() -> Option<PathBuf> {
    locus_schema::testing::sipp()
}

/// One sipp invocation.
#[derive(Clone, Debug)]
pub struct Sipp {
    /// Scenario file name in `tests/sip/`.
    pub scenario: &'static str,
    /// Where requests go (the proxy).
    pub remote: SocketAddr,
    /// Local SIP address: its port is free when chosen; a run that finds
    /// it taken by then runs again on another (`locus_schema::testing::ports`).
    pub local: SocketAddr,
    /// `-s`: R-URI user.
    pub service: String,
    /// `-key NAME VALUE` pairs.
    pub keys: Vec<(String, String)>,
    /// Digest credentials for `[authentication]` (`-au`, `-ap`).
    pub auth: Option<(String, String)>,
    /// Calls to make (`-m`).
    pub calls: u32,
    /// Calls per second (`-r`).
    pub rate: u32,
    /// Concurrent calls limit (`-l`).
    pub limit: u32,
    /// Pause of `<pause/>` (`-d`, ms).
    pub hold_ms: u32,
    /// `-t`: u1 (UDP) or t1 (TCP).
    pub transport: &'static str,
    /// Extra raw arguments (e.g. `-au`, `-ap`).
    pub extra: Vec<String>,
    /// Whole-run time limit.
    pub limit_time: Duration,
    /// A network namespace to run in (`ip netns exec`; `NatLab`).
    pub netns: Option<String>,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct SippResult {
    /// Exit code (0: every call succeeded).
    pub code: Option<i32>,
    /// Successful calls (from `-trace_stat`).
    pub ok: u64,
    /// Failed calls.
    pub failed: u64,
    /// sipp's stderr, its error log and the lines of its scenarios'
    /// `<log>` actions.
    pub log: String,
    /// The address sipp had (another than asked if that port was taken).
    pub local: SocketAddr,
}

impl SippResult {
    /// sipp failed because its port was taken (it never ran the scenario).
    fn clashed(&self) -> bool {
        self.code != Some(0) && ports::clashed(&self.log)
    }
}

impl Sipp {
    /// A UDP run of `scenario` against `remote`, one call.
    pub fn new(scenario: &'static str, remote: SocketAddr) -> Self {
        Sipp {
            scenario,
            remote,
            // sipp's own "-p 0" falls back to 5060/5061: pick a free port.
            local: SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
            service: "service".into(),
            keys: Vec::new(),
            auth: None,
            calls: 1,
            rate: 10,
            limit: 100,
            hold_ms: 100,
            transport: "u1",
            extra: Vec::new(),
            limit_time: Duration::from_secs(30),
            netns: None,
        }
    }

    /// Runs inside network namespace `ns` on `local` (an address of that
    /// namespace; it is the run's alone, so no other process takes it).
    pub fn in_netns(mut self, ns: &str, local: SocketAddr) -> Self {
        self.netns = Some(ns.into());
        self.local = local;
        self
    }

    /// Sets `-key name value` (replacing an earlier value).
    pub fn key(mut self, name: &str, value: &str) -> Self {
        self.keys.retain(|(k, _)| k != name);
        self.keys.push((name.into(), value.into()));
        self
    }

    /// Answers out-of-call requests (a call to a registered phone) with
    /// the scenario `name` from `tests/sip/` (`-oocsf`).
    pub fn ooc(mut self, name: &str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sip")
            .join(name);
        self.extra.push("-oocsf".into());
        self.extra.push(path.to_string_lossy().into_owned());
        self
    }

    /// Digest credentials for `[authentication]` (`-au`, `-ap`).
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// A phone `user@domain`, a vanilla directory user: it answers the
    /// boxes' challenges (401, and 407 with vanilla `auth-calls`) with the
    /// vanilla password.
    pub fn phone(self, user: &str, domain: &str) -> Self {
        self.key("user", user)
            .key("domain", domain)
            .auth(user, locus_sim::VANILLA_PASSWORD)
    }

    fn command(&self, dir: &Path) -> Command {
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sip")
            .join(self.scenario);
        let sipp = sipp_bin().unwrap_or_else(|| "sipp".into());
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(sipp);
                c
            }
            None => Command::new(sipp),
        };
        cmd.arg(self.remote.to_string())
            .arg("-sf")
            .arg(scenario)
            .args(["-i", &self.local.ip().to_string()])
            .args(["-p", &self.local.port().to_string()])
            .args(["-t", self.transport])
            .args(["-s", &self.service])
            .args(["-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string()])
            .args(["-l", &self.limit.to_string()])
            .args(["-d", &self.hold_ms.to_string()])
            .args(["-timeout", &format!("{}s", self.limit_time.as_secs())])
            .args(["-timeout_error", "-max_recv_loops", "1000", "-nostdin"])
            .args(["-trace_stat", "-stf"])
            .arg(dir.join("stat.csv"))
            .arg("-trace_err")
            .args(["-error_file"])
            .arg(dir.join("errors.log"))
            .args(["-trace_logs", "-log_file"])
            .arg(dir.join("logs.log"));
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        if let Some((user, password)) = &self.auth {
            cmd.args(["-au", user, "-ap", password]);
        }
        cmd.args(&self.extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs to the end (bounded) and reports; when sipp could not bind its
    /// port (taken since it was picked), again on a fresh one (bounded).
    pub async fn run(&self) -> SippResult {
        if self.netns.is_some() {
            return self.run_once().await;
        }
        let ip = self.local.ip();
        let once = |port| {
            let mut run = self.clone();
            run.local = SocketAddr::new(ip, port);
            async move { run.run_once().await }
        };
        ports::with_port_async(ip, Some(self.local.port()), once, SippResult::clashed)
            .await
            .expect("a free port for sipp")
    }

    async fn run_once(&self) -> SippResult {
        let dir = tempdir();
        let mut fg = self.command(&dir);
        let out =
            tokio::time::timeout(self.limit_time + Duration::from_secs(10), fg.output()).await;
        let (code, log) = match out {
            Ok(Ok(o)) => (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Ok(Err(e)) => (None, format!("sipp did not start: {e}")),
            Err(_) => (None, "sipp overran its time limit".into()),
        };
        let res = report(code, log, &dir, self.local);
        let _ = std::fs::remove_dir_all(&dir);
        res
    }

    /// Starts in the background (a phone waiting for a call) and returns
    /// once sipp holds its port (seen in `/proc`, bounded); when the port
    /// was taken, again on a fresh one ([`SippChild::local`]). The run ends
    /// with its scenario, its time limit, or when the handle is dropped.
    pub async fn spawn(&self) -> SippChild {
        let dir = tempdir();
        let ip = self.local.ip();
        let make = |port| {
            let mut run = self.clone();
            run.local = SocketAddr::new(ip, port);
            run.command(&dir)
        };
        let (spawned, port) = ports::spawn_bound(ip, Some(self.local.port()), super::WAIT, make)
            .await
            .unwrap_or_else(|e| panic!("sipp on {ip}: {e}"));
        let local = SocketAddr::new(ip, port);
        match spawned {
            ports::Spawned::Listening(child) => SippChild {
                child: Some(child),
                dir,
                local,
                early: None,
            },
            // Over already (or failed): `finish` reports it.
            ports::Spawned::Exited(out) => {
                let log = String::from_utf8_lossy(&out.stderr).into_owned();
                let early = report(out.status.code(), log, &dir, local);
                SippChild {
                    child: None,
                    dir,
                    local,
                    early: Some(early),
                }
            }
        }
    }
}

/// A run's report: its exit code and stderr, with the error log and the
/// statistics sipp wrote in `dir`.
fn report(code: Option<i32>, mut log: String, dir: &Path, local: SocketAddr) -> SippResult {
    for file in ["errors.log", "logs.log"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            log.push_str(&text);
        }
    }
    let (ok, failed) = stat_counts(&dir.join("stat.csv"));
    SippResult {
        code,
        ok,
        failed,
        log,
        local,
    }
}

/// A background sipp.
pub struct SippChild {
    child: Option<Child>,
    dir: PathBuf,
    /// The address it holds.
    pub local: SocketAddr,
    /// The report of a run that failed before it was handed over.
    early: Option<SippResult>,
}

impl SippChild {
    /// Waits (bounded) for it to finish and reports.
    pub async fn finish(mut self, limit: Duration) -> SippResult {
        match self.early.take() {
            Some(res) => res,
            None => self.report(limit).await,
        }
    }

    async fn report(&mut self, limit: Duration) -> SippResult {
        let Some(child) = self.child.as_mut() else {
            return report(None, "no sipp".into(), &self.dir, self.local);
        };
        let code = match tokio::time::timeout(limit, child.wait()).await {
            Ok(Ok(s)) => s.code(),
            _ => {
                let _ = child.kill().await;
                None
            }
        };
        let mut log = String::new();
        if let Some(mut e) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = e.read_to_string(&mut log).await;
        }
        report(code, log, &self.dir, self.local)
    }
}

impl Drop for SippChild {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A UDP and TCP port free right now on 127.0.0.1, for a sipp (whose
/// runs retry on a clash).
pub fn free_udp_port() -> u16 {
    ports::free_port([127, 0, 0, 1].into()).expect("a free port on 127.0.0.1")
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "locus-sipp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Last row's `SuccessfulCall(C)` and `FailedCall(C)` of a `-trace_stat` file.
fn stat_counts(path: &Path) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (0, 0);
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (0, 0);
    };
    let cols: Vec<&str> = header.split(';').collect();
    let Some(last) = lines.next_back() else {
        return (0, 0);
    };
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}
