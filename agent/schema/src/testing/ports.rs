//! Ports for the external processes tests start (redis-server, sipp,
//! kamailio): the one place that picks a port and retries when another
//! process took it first.
//!
//! Our own code never needs this: it binds port 0 and reports the address,
//! or takes a socket the test bound (`TransportConfig::udp_sockets`). An
//! external program binds by itself, so between our probe and its bind
//! another process may take the port; [`with_port`] / [`with_port_async`]
//! then run it again on a fresh one, a bounded number of times, when its
//! output says so ([`clashed`]).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

/// Runs of one program before the last clash is given back.
pub const ATTEMPTS: usize = 5;

/// A port free on `ip` for UDP and TCP at this moment (the probe sockets
/// are closed again: use it for an external process, with a retry).
pub fn free_port(ip: IpAddr) -> io::Result<u16> {
    let mut last = io::Error::other("no attempt");
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((ip, port)) {
            Ok(_) => return Ok(port),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// True when a program's output (stderr, log, error text) says its bind
/// failed on a port in use: redis-server ("bind: Address already in use"),
/// sipp ("Unable to bind ... socket ... Address already in use"),
/// kamailio ("bind(...) ... Address already in use"), Rust (`AddrInUse`).
pub fn clashed(output: &str) -> bool {
    let o = output.to_ascii_lowercase();
    o.contains("address already in use") || o.contains("eaddrinuse") || o.contains("addrinuse")
}

/// Runs `run` on `first` (or a free port of `ip`), then on fresh ports
/// while `clash` says the port was taken, at most [`ATTEMPTS`] times in
/// all; the last outcome when every run clashed.
///
/// # Errors
/// When no free port can be found.
pub fn with_port<T>(
    ip: IpAddr,
    first: Option<u16>,
    mut run: impl FnMut(u16) -> T,
    clash: impl Fn(&T) -> bool,
) -> io::Result<T> {
    let mut port = match first {
        Some(p) => p,
        None => free_port(ip)?,
    };
    let mut attempt = 1;
    loop {
        let out = run(port);
        if attempt >= ATTEMPTS || !clash(&out) {
            return Ok(out);
        }
        attempt += 1;
        port = free_port(ip)?;
    }
}

/// [`with_port`] for a run that is awaited (a sipp child under tokio).
///
/// # Errors
/// When no free port can be found.
pub async fn with_port_async<T, F, Fut>(
    ip: IpAddr,
    first: Option<u16>,
    mut run: F,
    clash: impl Fn(&T) -> bool,
) -> io::Result<T>
where
    F: FnMut(u16) -> Fut,
    Fut: Future<Output = T>,
{
    let mut port = match first {
        Some(p) => p,
        None => free_port(ip)?,
    };
    let mut attempt = 1;
    loop {
        let out = run(port).await;
        if attempt >= ATTEMPTS || !clash(&out) {
            return Ok(out);
        }
        attempt += 1;
        port = free_port(ip)?;
    }
}

/// What [`spawn_bound`] started.
#[derive(Debug)]
pub enum Spawned {
    /// Running, holding its port.
    Listening(tokio::process::Child),
    /// Ended before it was seen holding its port (a run that was over at
    /// once, or failed for another reason than a clash): its output.
    Exited(std::process::Output),
}

/// Pause between looks at a starting child.
const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Starts `make(port)` (a program that binds `ip:port` itself; stdout and
/// stderr piped) and returns once it holds the port (seen in `/proc`); when
/// it exits saying the port was taken ([`clashed`] on its stderr), again on
/// a fresh port, at most [`ATTEMPTS`] runs. Each wait is bounded by `within`.
///
/// # Errors
/// No free port, the program cannot be started, or it neither held its
/// port nor exited within `within` (it is killed).
pub async fn spawn_bound(
    ip: IpAddr,
    first: Option<u16>,
    within: std::time::Duration,
    mut make: impl FnMut(u16) -> tokio::process::Command,
) -> io::Result<(Spawned, u16)> {
    let mut port = match first {
        Some(p) => p,
        None => free_port(ip)?,
    };
    for attempt in 1..=ATTEMPTS {
        let mut child = make(port).spawn()?;
        let deadline = tokio::time::Instant::now() + within;
        let out = loop {
            let holds = child
                .id()
                .is_some_and(|pid| listening(pid).iter().any(|(_, a)| a.port() == port));
            if holds {
                return Ok((Spawned::Listening(child), port));
            }
            if child.try_wait()?.is_some() {
                break child.wait_with_output().await?;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill().await;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("did not bind {ip}:{port} within {within:?}"),
                ));
            }
            tokio::time::sleep(POLL).await;
        };
        let clash = !out.status.success() && clashed(&String::from_utf8_lossy(&out.stderr));
        if !clash || attempt == ATTEMPTS {
            return Ok((Spawned::Exited(out), port));
        }
        port = free_port(ip)?;
    }
    Err(io::Error::other("no attempt"))
}

/// The sockets process `pid` has bound (UDP) or listens on (TCP), from
/// `/proc` (Linux): how a test knows a child has its port, and that
/// nothing else is open. IPv6 addresses come back as `[::]`-style text
/// only for the unspecified and loopback ones; others are skipped.
pub fn listening(pid: u32) -> Vec<(&'static str, SocketAddr)> {
    let mine: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/{proto}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN; a bound UDP socket is 07), inode.
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if (proto.starts_with("tcp") && *state != "0A") || !mine.contains(*inode) {
                continue;
            }
            if let Some(addr) = proc_addr(local) {
                out.push((proto, addr));
            }
        }
    }
    out
}

/// `0500007F:13D8` -> 127.0.0.5:5080; the 32-hex-digit IPv6 form too
/// (`/proc` prints each 32-bit word in host byte order).
fn proc_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip: IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(word(0)?).into(),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            std::net::Ipv6Addr::from(b).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_clash_is_retried_on_a_fresh_port_and_bounded() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        // A port we hold: the first run clashes, the next gets another one.
        let held = TcpListener::bind((ip, 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        let mut tried = Vec::new();
        let out = with_port(
            ip,
            Some(taken),
            |p| {
                tried.push(p);
                TcpListener::bind((ip, p)).map_err(|e| e.to_string())
            },
            |r| r.as_ref().is_err_and(|e| clashed(e)),
        )
        .unwrap();
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_eq!(tried[0], taken);
        assert_ne!(tried[1], taken);
        // Always clashing: ATTEMPTS runs, then the last outcome.
        let mut runs = 0;
        let out = with_port(
            ip,
            None,
            |_| {
                runs += 1;
                "Address already in use"
            },
            |o| clashed(o),
        )
        .unwrap();
        assert_eq!((runs, out), (ATTEMPTS, "Address already in use"));
        // Another failure is not retried.
        let mut runs = 0;
        with_port(ip, None, |_| runs += 1, |()| false).unwrap();
        assert_eq!(runs, 1);
    }

    #[test]
    fn clashes_are_read_from_each_programs_words() {
        for text in [
            "Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use",
            "2026-12-05 Unable to bind UDP socket: Address already in use",
            "ERROR: bind(7, 0x..., 16) on 127.0.0.1: Address already in use",
            "Os { code: 98, kind: AddrInUse, message: \"Address in use\" }",
        ] {
            assert!(clashed(text), "{text}");
        }
        assert!(!clashed("Connection refused"));
    }

    #[test]
    fn our_own_sockets_are_listed() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let mine = listening(std::process::id());
        assert!(
            mine.contains(&("udp", udp.local_addr().unwrap())),
            "{mine:?}"
        );
        assert!(
            mine.contains(&("tcp", tcp.local_addr().unwrap())),
            "{mine:?}"
        );
        if let Ok(v6) = TcpListener::bind("[::1]:0") {
            let mine = listening(std::process::id());
            assert!(
                mine.contains(&("tcp6", v6.local_addr().unwrap())),
                "{mine:?}"
            );
        }
    }
}
