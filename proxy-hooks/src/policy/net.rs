//! [`Cidr`]: an IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`, or a
//! bare address meaning one host), for matching carrier trunks by source
//! address. Small enough to keep rather than add a crate.

use std::fmt;
use std::net::IpAddr;

/// An address block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// Network address, host bits cleared.
    net: IpAddr,
    /// Prefix length (0-32 for IPv4, 0-128 for IPv6).
    len: u8,
}

impl Cidr {
    /// Parses `addr/len` or a bare `addr` (a /32 or /128). Host bits set
    /// below the prefix are refused: `10.0.0.1/8` is almost always a typo.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let ip = ip.to_canonical();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0-{max}")),
            },
        };
        let cidr = Cidr { net: ip, len };
        if cidr.masked(ip) != ip {
            return Err(format!("{s:?}: host bits set below the /{len} prefix"));
        }
        Ok(cidr)
    }

    /// `ip` with the bits below the prefix cleared (same family as `ip`).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let m = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & m).into())
            }
        }
    }

    /// Whether `ip` is in this block. IPv4-mapped IPv6 addresses (a
    /// dual-stack socket's view of an IPv4 peer) match IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && self.masked(ip) == self.net
    }
}

/// Whether `ip` belongs to a network that does not route on the Internet
/// and so, seen in a phone's Contact or Via, means a NAT between it and us:
/// RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 shared address space
/// (carrier-grade NAT, 100.64/10), link-local (169.254/16, fe80::/10) and
/// RFC 4193 unique-local IPv6 (fc00::/7). IPv4-mapped IPv6 is folded.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let [o1, o2, ..] = a.octets();
            a.is_private() || a.is_link_local() || (o1 == 100 && (o2 & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_blocks() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains(ip("192.0.2.77")));
        assert!(!c.contains(ip("192.0.3.1")));
        assert!(c.contains(ip("::ffff:192.0.2.1")), "mapped v4");
        assert!(!c.contains(ip("2001:db8::1")));
        let host = Cidr::parse("203.0.113.5").unwrap();
        assert!(host.contains(ip("203.0.113.5")) && !host.contains(ip("203.0.113.6")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert_eq!(c.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn v6_blocks() {
        let c = Cidr::parse("2001:db8:10::/48").unwrap();
        assert!(c.contains(ip("2001:db8:10:ffff::1")));
        assert!(!c.contains(ip("2001:db8:11::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert!(
            Cidr::parse("2001:db8::7/128")
                .unwrap()
                .contains(ip("2001:db8::7"))
        );
    }

    #[test]
    fn private_cgnat_link_local_and_unique_local_addresses() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.2",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.1.1",
            "fd00::1",
            "fc12::1",
            "fe80::1",
            "::ffff:192.168.0.9",
        ] {
            assert!(is_private(ip(p)), "{p}");
        }
        for p in [
            "198.18.0.1",
            "100.128.0.1",
            "100.63.255.255",
            "172.32.0.1",
            "8.8.8.8",
            "127.0.0.1",
            "2001:db8::1",
            "::1",
        ] {
            assert!(!is_private(ip(p)), "{p}");
        }
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "10.0.0/8",
            "host.example.com",
            "2001:db8::/129",
            "10.0.0.0/x",
            "10.0.0.0/",
            "10.0.0.0/-1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
