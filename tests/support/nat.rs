//! A real NAT for the tests (issue "Tests with a real NAT"): three network
//! namespaces per lab, `lnat-<pid>-<k>-{phone,nat,farm}`, joined by veth
//! pairs:
//!
//! ```text
//! phone ns 192.168.N.2 --LAN-- 192.168.N.1 nat ns 198.18.N.2 --public-- 198.18.N.1 farm ns
//! ```
//!
//! The nat ns masquerades what leaves on its public side with nftables
//! (`masquerade random,fully-random`: every new flow gets a random port,
//! as a carrier-grade NAT does), so a phone's packets reach the farm from
//! 198.18.N.2 and a port the NAT chose, and only what answers a live
//! conntrack entry (the pinhole) gets back in. The proxy, the simulated
//! boxes and Redis run inside the farm ns ([`NatLab::block_on_farm`]),
//! sipp phones in the phone ns (`Sipp::in_netns`). Nothing leaves these
//! namespaces; [`Drop`] deletes them, also when a test panics.

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Name prefix of every lab namespace (`ip netns list` shows leftovers).
const PREFIX: &str = "lnat-";

/// One lab: its namespaces exist while the value lives.
pub struct NatLab {
    /// `lnat-<pid>-<k>`: the namespaces are `<name>-phone` and so on.
    pub name: String,
    /// The N of the lab's subnets.
    n: u8,
}

impl NatLab {
    /// Builds a lab, or prints why it cannot (`SKIP: ...`) and returns
    /// `None` when not root or `ip`, `nft`, `conntrack` or `sipp` is
    /// missing (CI installs them and runs as root). Any other failure
    /// panics: a machine that has the tools must run the tests.
    pub fn start() -> Option<NatLab> {
        if let Some(why) = missing() {
            eprintln!("SKIP: real NAT tests need {why}");
            return None;
        }
        sweep_stale();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let lab = NatLab {
            name: format!("{PREFIX}{}-{k}", std::process::id()),
            // The subnets live in the lab's own namespaces, so labs never
            // clash; N only makes the addresses tell labs apart in logs.
            n: u8::try_from(10 + k % 200).unwrap_or(10),
        };
        if let Err(e) = lab.build() {
            panic!("NAT lab {}: {e}", lab.name);
        }
        Some(lab)
    }

    /// The phone's namespace (the private LAN behind the NAT).
    pub fn phone_ns(&self) -> String {
        format!("{}-phone", self.name)
    }

    /// The NAT's namespace.
    pub fn nat_ns(&self) -> String {
        format!("{}-nat", self.name)
    }

    /// The farm's namespace (proxy, boxes, Redis).
    pub fn farm_ns(&self) -> String {
        format!("{}-farm", self.name)
    }

    /// The phone's private address, 192.168.N.2.
    pub fn phone_ip(&self) -> IpAddr {
        Ipv4Addr::new(192, 168, self.n, 2).into()
    }

    /// The NAT's public address, 198.18.N.2: every phone packet comes
    /// from it.
    pub fn nat_public_ip(&self) -> IpAddr {
        Ipv4Addr::new(198, 18, self.n, 2).into()
    }

    /// The farm's address on the public link, 198.18.N.1 (the proxy
    /// listens there).
    pub fn farm_ip(&self) -> IpAddr {
        Ipv4Addr::new(198, 18, self.n, 1).into()
    }

    fn build(&self) -> Result<(), String> {
        let (phone, nat, farm) = (self.phone_ns(), self.nat_ns(), self.farm_ns());
        for ns in [&phone, &nat, &farm] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let n = self.n;
        let lan = |host: u8| format!("192.168.{n}.{host}/24");
        let public = |host: u8| format!("198.18.{n}.{host}/24");
        ip(&[
            "-n", &nat, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns",
            &phone,
        ])?;
        ip(&[
            "-n", &nat, "link", "add", "wan", "type", "veth", "peer", "name", "eth0", "netns",
            &farm,
        ])?;
        for (ns, dev, addr) in [
            (&phone, "eth0", lan(2)),
            (&nat, "lan", lan(1)),
            (&nat, "wan", public(2)),
            (&farm, "eth0", public(1)),
        ] {
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // The phone reaches the world through its NAT; the farm has no
        // route back to the LAN: only the pinhole answers.
        ip(&[
            "-n",
            &phone,
            "route",
            "add",
            "default",
            "via",
            &format!("192.168.{n}.1"),
        ])?;
        in_ns(&nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
        let rules = "table ip lnat {\n\
             \tchain post {\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\toifname \"wan\" masquerade random,fully-random\n\
             \t}\n\
             }\n";
        in_ns(&nat, &["nft", "-f", "-"], Some(rules))
    }

    /// Conntrack's UDP timeouts in the NAT (`nf_conntrack_udp_timeout`, a
    /// flow that saw one packet, and `_stream`, one that saw answers):
    /// a pinhole idle this long closes.
    pub fn set_udp_timeout(&self, secs: u32) {
        for key in [
            "nf_conntrack_udp_timeout",
            "nf_conntrack_udp_timeout_stream",
        ] {
            let set = format!("net.netfilter.{key}={secs}");
            in_ns(&self.nat_ns(), &["sysctl", "-qw", &set], None).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Forgets every NAT mapping: the phone's next packet leaves by a new
    /// public port (a phone whose NAT rebooted, or that moved).
    pub fn flush_conntrack(&self) {
        // `conntrack -F` exits 1 when the table was already empty.
        let _ =
            output(Command::new("ip").args(["netns", "exec", &self.nat_ns(), "conntrack", "-F"]));
    }

    /// The public address and port the NAT gives the flow `private` ->
    /// `remote` right now (the source the farm sees), if it has one.
    pub fn public_of(&self, private: SocketAddr, remote: SocketAddr) -> Option<SocketAddr> {
        self.pinhole(private, remote).map(|(public, _)| public)
    }

    /// The NAT's mapping of the flow `private` -> `remote`: its public
    /// address and port, and the seconds it has left unless traffic
    /// refreshes it.
    pub fn pinhole(&self, private: SocketAddr, remote: SocketAddr) -> Option<(SocketAddr, u32)> {
        let (src, sport) = (private.ip().to_string(), private.port().to_string());
        let (dst, dport) = (remote.ip().to_string(), remote.port().to_string());
        let text = output(Command::new("ip").args([
            "netns",
            "exec",
            &self.nat_ns(),
            "conntrack",
            "-L",
            "-p",
            "udp",
            "--orig-src",
            &src,
            "--orig-port-src",
            &sport,
            "--orig-dst",
            &dst,
            "--orig-port-dst",
            &dport,
        ]))
        .ok()?;
        text.lines().find_map(parse_pinhole)
    }

    /// Gives the farm namespace `ip` too (on its loopback): a host of the
    /// farm's own network that happens to have a phone's private address.
    pub fn add_farm_address(&self, host: IpAddr) {
        let addr = format!("{host}/32");
        ip(&["-n", &self.farm_ns(), "addr", "add", &addr, "dev", "lo"])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `f` on a thread inside the farm namespace: every socket it
    /// opens, thread it starts and process it spawns lives there.
    pub fn in_farm<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.farm_ns());
        std::thread::scope(|s| {
            let thread = s.spawn(move || {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs the future `f` makes on a two-worker tokio runtime inside the
    /// farm namespace (the runtime's threads start there).
    pub fn block_on_farm<F: Future>(&self, f: impl FnOnce() -> F + Send) -> F::Output
    where
        F::Output: Send,
    {
        self.in_farm(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(f())
        })
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        for ns in [self.phone_ns(), self.nat_ns(), self.farm_ns()] {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("NAT lab teardown: {e}");
            }
        }
    }
}

/// Why the lab cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("root (network namespaces, nftables)".into());
    }
    for (tool, flag) in [("ip", "-V"), ("nft", "-v"), ("conntrack", "-V")] {
        let ok = Command::new(tool)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!(
                "`{tool}` (apt-get install iproute2 nftables conntrack)"
            ));
        }
    }
    if super::sipp::sipp_bin().is_none() {
        return Some("sipp (apt-get install sip-tester)".into());
    }
    None
}

/// Deletes lab namespaces left by test processes that died without their
/// `Drop` (killed): their pid is gone.
fn sweep_stale() {
    let Ok(list) = output(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// A `conntrack -L` line: `udp 17 TTL src=.. dst=.. sport=.. dport=..
/// src=.. dst=A sport=.. dport=P ...`: the reply direction's destination
/// A:P (the NAT's public side of the flow) and the TTL.
fn parse_pinhole(line: &str) -> Option<(SocketAddr, u32)> {
    let field = |key: &str| {
        line.split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .nth(1)
    };
    let public = SocketAddr::new(field("dst=")?.parse().ok()?, field("dport=")?.parse().ok()?);
    let ttl = line.split_whitespace().nth(2)?.parse().ok()?;
    Some((public, ttl))
}

fn ip(args: &[&str]) -> Result<(), String> {
    output(Command::new("ip").args(args)).map(drop)
}

/// `ip netns exec ns args...`, with `stdin` fed when given.
fn in_ns(ns: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(args);
    let Some(input) = stdin else {
        return output(&mut cmd).map(drop);
    };
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    if let Some(mut w) = child.stdin.take() {
        w.write_all(input.as_bytes())
            .map_err(|e| format!("{what}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Runs `cmd` to its end: its stdout, or what failed.
fn output(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
