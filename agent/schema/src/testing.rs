//! Throwaway Redis servers for tests (feature `testing`): a real
//! `redis-server` on a free loopback port with its own temp dir, no
//! persistence, killed on drop; and a Sentinel watching one.
//!
//! Readiness is polled (a `PING` over a socket, bounded by a deadline), never
//! waited for with a fixed sleep. The binary is `redis-server` from `PATH`,
//! or `$LOCUS_REDIS_SERVER`.

pub mod ports;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a server gets to answer its first `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between readiness probes.
const PROBE_EVERY: Duration = Duration::from_millis(20);

static SEQ: AtomicU32 = AtomicU32::new(0);

fn binary() -> String {
    std::env::var("LOCUS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// True when `redis-server` can be run (tests may skip themselves when not).
pub fn redis_available() -> bool {
    Command::new(binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `sipp` binary for the SIP tests (CI installs package `sip-tester`).
/// A missing sipp fails the test that asks, so a machine without it never
/// reports a green run it did not do; `LOCUS_SKIP_SIPP=1` turns that into
/// `None` (the caller skips, saying so) for a deliberate partial run.
///
/// # Panics
/// When sipp is not installed and `LOCUS_SKIP_SIPP` is not `1`.
pub fn sipp() -> Option<std::path::PathBuf> {
    let candidates = std::env::var_os("LOCUS_SIPP")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/sipp", "/usr/local/bin/sipp"].map(std::path::PathBuf::from));
    let skip = std::env::var("LOCUS_SKIP_SIPP").is_ok_and(|v| v == "1");
    pick_sipp(candidates, skip)
}

/// The first existing candidate; none: a panic, or `None` when `skip`.
fn pick_sipp(
    candidates: impl IntoIterator<Item = std::path::PathBuf>,
    skip: bool,
) -> Option<std::path::PathBuf> {
    let found = candidates.into_iter().find(|p| p.exists());
    if found.is_none() {
        assert!(
            skip,
            "sipp is required for this test: apt-get install sip-tester \
             (or set LOCUS_SKIP_SIPP=1 to skip the SIP tests)"
        );
        eprintln!("skipping: sipp is not installed and LOCUS_SKIP_SIPP=1");
    }
    found
}

/// Where the servers listen.
const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A start that failed because another process took the port.
fn port_taken<T>(r: &io::Result<T>) -> bool {
    r.as_ref().is_err_and(|e| ports::clashed(&e.to_string()))
}

/// A fresh, empty directory under the system temp dir.
fn temp_dir(kind: &str) -> io::Result<PathBuf> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("locus-{kind}-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Sends inline commands and returns what came back (one read per command).
fn probe(port: u16, commands: &[&str]) -> io::Result<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut out = String::new();
    let mut buf = [0u8; 512];
    for c in commands {
        s.write_all(format!("{c}\r\n").as_bytes())?;
        let n = s.read(&mut buf)?;
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(out)
}

/// One supervised server process (Redis or Sentinel).
struct Proc {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    password: Option<String>,
}

impl Proc {
    /// Starts `args` on `port`, waiting until `PING` answers `PONG`.
    fn spawn(&mut self, args: &[String]) -> io::Result<()> {
        let log = self.dir.join("server.log");
        let child = Command::new(binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let mut cmds = Vec::new();
        let auth = self.password.as_ref().map(|p| format!("AUTH {p}"));
        cmds.extend(auth.as_deref());
        cmds.push("PING");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if probe(self.port, &cmds).is_ok_and(|r| r.contains("+PONG")) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                None => true,
            };
            if exited || Instant::now() >= deadline {
                self.kill();
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(io::Error::other(format!(
                    "redis-server on port {} not ready (exited: {exited}): {tail}",
                    self.port
                )));
            }
            std::thread::sleep(PROBE_EVERY);
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `redis-server` on `127.0.0.1:<free port>`, killed on drop.
pub struct RedisServer {
    proc: Proc,
}

impl RedisServer {
    /// Starts a server without a password.
    pub fn start() -> io::Result<Self> {
        Self::start_inner(None)
    }

    /// Starts a server with `--requirepass password`.
    pub fn start_with_password(password: &str) -> io::Result<Self> {
        Self::start_inner(Some(password.to_owned()))
    }

    fn start_inner(password: Option<String>) -> io::Result<Self> {
        ports::with_port(
            LOOPBACK,
            None,
            |port| {
                let mut server = Self {
                    proc: Proc {
                        child: None,
                        port,
                        dir: temp_dir("redis")?,
                        password: password.clone(),
                    },
                };
                server.launch().map(|()| server)
            },
            port_taken,
        )?
    }

    fn launch(&mut self) -> io::Result<()> {
        let p = &self.proc;
        let mut args: Vec<String> = [
            "--port",
            &p.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &path_str(&p.dir)?,
            "--logfile",
            &path_str(&p.dir.join("server.log"))?,
        ]
        .map(str::to_owned)
        .into();
        if let Some(pw) = &p.password {
            args.extend(["--requirepass".to_owned(), pw.clone()]);
        }
        self.proc.spawn(&args)
    }

    /// `redis://[:password@]127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        match &self.proc.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/0", self.proc.port),
            None => format!("redis://127.0.0.1:{}/0", self.proc.port),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// The password, if started with one.
    pub fn password(&self) -> Option<&str> {
        self.proc.password.as_deref()
    }

    /// Kills the server (its data is lost: no persistence).
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.proc
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops (if running) and starts again, empty, on the same port: what
    /// an agent sees when Redis restarts.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.launch()
    }
}

/// A Redis Sentinel (`redis-server --sentinel`) monitoring one
/// [`RedisServer`] as master `name`, with quorum 1.
pub struct RedisSentinel {
    proc: Proc,
    name: String,
}

impl RedisSentinel {
    /// Starts a sentinel for `master` under the master name `name`.
    pub fn start(master: &RedisServer, name: &str) -> io::Result<Self> {
        ports::with_port(
            LOOPBACK,
            None,
            |port| Self::start_on(master, name, port),
            port_taken,
        )?
    }

    fn start_on(master: &RedisServer, name: &str, port: u16) -> io::Result<Self> {
        let dir = temp_dir("sentinel")?;
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\n\
             sentinel monitor {name} 127.0.0.1 {} 1\n",
            path_str(&dir)?,
            path_str(&dir.join("server.log"))?,
            master.port()
        );
        if let Some(pw) = master.password() {
            conf.push_str(&format!("sentinel auth-pass {name} {pw}\n"));
        }
        let conf_path = dir.join("sentinel.conf");
        std::fs::write(&conf_path, conf)?;
        let mut proc = Proc {
            child: None,
            port,
            dir,
            password: None,
        };
        proc.spawn(&[path_str(&conf_path)?, "--sentinel".to_owned()])?;
        Ok(Self {
            proc,
            name: name.to_owned(),
        })
    }

    /// The sentinel's port.
    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// `redis+sentinel://[:pw@]127.0.0.1:<port>/<name>/0`, with the
    /// master's password (if any) in the userinfo.
    pub fn url(&self, master_password: Option<&str>) -> String {
        let auth = master_password
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        format!(
            "redis+sentinel://{auth}127.0.0.1:{}/{}/0",
            self.proc.port, self.name
        )
    }
}

fn path_str(p: &Path) -> io::Result<String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other("temp dir path is not UTF-8"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn server_starts_stops_and_restarts_on_the_same_port() {
        assert!(
            redis_available(),
            "redis-server is required for these tests"
        );
        let mut s = RedisServer::start().unwrap();
        let port = s.port();
        assert!(probe(port, &["PING"]).unwrap().contains("+PONG"));
        s.stop();
        assert!(!s.is_running());
        assert!(probe(port, &["PING"]).is_err());
        s.restart().unwrap();
        assert_eq!(s.port(), port);
        assert!(probe(port, &["PING"]).unwrap().contains("+PONG"));
    }

    #[test]
    #[should_panic(expected = "sipp is required")]
    fn missing_sipp_fails_the_test() {
        pick_sipp(["/nonexistent/sipp".into()], false);
    }

    #[test]
    fn missing_sipp_skips_only_when_asked() {
        assert_eq!(pick_sipp(["/nonexistent/sipp".into()], true), None);
        let here = std::env::current_exe().unwrap();
        assert_eq!(
            pick_sipp(["/nonexistent/sipp".into(), here.clone()], false),
            Some(here)
        );
    }

    #[test]
    fn password_is_required() {
        let s = RedisServer::start_with_password("pw1").unwrap();
        assert!(probe(s.port(), &["PING"]).unwrap().contains("NOAUTH"));
        assert!(s.url().contains(":pw1@"));
    }
}
