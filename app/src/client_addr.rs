//! Who the client is, behind HAProxy.
//!
//! `X-Forwarded-For` is a list anyone can write: a client that reaches a replica directly sends
//! whatever addresses it likes. Only the entries appended by proxies we run can be believed. So
//! the peer's own address is the client's, unless the peer is a trusted proxy
//! (`TRUSTED_PROXIES`); then the entry that proxy appended is, and so on leftwards while the
//! entries are themselves trusted proxies. The first address nobody we trust vouches for is the
//! client.
//!
//! Throttling counts an IPv6 client by its /64: one subscriber usually gets a whole /64 and can
//! change its address within it at will.
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses and networks (`127.0.0.1`, `172.28.0.0/24`, `::1`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries = list.split(',').map(str::trim).filter(|entry| !entry.is_empty());
        let nets = entries
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an IP address nor a network like 10.0.0.0/8"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(nets))
    }

    fn trust(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address: `peer`, or what trusted proxies say in `forwarded_for` (the
    /// `X-Forwarded-For` values, in the order they arrived).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        // Several values are one list; its last entry is the nearest hop's.
        let hops: Vec<&str> = forwarded_for.iter().flat_map(|value| value.split(',')).collect();
        let mut client = canonical(peer);
        for hop in hops.iter().rev() {
            if !self.trust(client) {
                break;
            }
            match hop.trim().parse::<IpAddr>() {
                Ok(addr) => client = canonical(addr),
                // No proxy of ours writes this: believe no more of the list.
                Err(_) => break,
            }
        }
        client
    }
}

/// IPv4 clients as themselves, IPv6 clients as their /64, as a throttle key.
pub fn throttle_key(client: &str) -> String {
    match client.parse::<IpAddr>().map(canonical) {
        Ok(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
        Ok(v4) => v4.to_string(),
        Err(_) => client.to_owned(),
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) is the IPv4 client.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let haproxy = TrustedProxies::parse("127.0.0.1, 172.28.0.0/24").unwrap();
        // Straight to a replica: whatever the header says, the peer is the client.
        assert_eq!(haproxy.client(ip("127.0.0.2"), &["203.0.113.9"]), ip("127.0.0.2"));
        // Through HAProxy: the entry it appended, not the one the client wrote before it.
        assert_eq!(haproxy.client(ip("127.0.0.1"), &["203.0.113.9, 198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(haproxy.client(ip("127.0.0.1"), &["203.0.113.9", "198.51.100.7"]), ip("198.51.100.7"));
        // A chain of trusted proxies is walked to the first address none of them is.
        assert_eq!(haproxy.client(ip("127.0.0.1"), &["198.51.100.7, 172.28.0.5"]), ip("198.51.100.7"));
        // Garbage, or no header, from a trusted proxy: the proxy is all we know.
        assert_eq!(haproxy.client(ip("127.0.0.1"), &["not-an-address"]), ip("127.0.0.1"));
        assert_eq!(haproxy.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        // Nobody trusted: the header is never read.
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &["198.51.100.7"]), ip("127.0.0.1"));
        // An IPv4 peer on an IPv6 socket is the IPv4 address.
        assert_eq!(haproxy.client(ip("::ffff:127.0.0.1"), &["198.51.100.7"]), ip("198.51.100.7"));
        assert!(TrustedProxies::parse("127.0.0.1, haproxy").unwrap_err().contains("\"haproxy\""));
        assert_eq!(TrustedProxies::parse(" ").unwrap(), TrustedProxies::default());
    }

    #[test]
    fn ipv6_clients_are_throttled_per_64() {
        assert_eq!(throttle_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(throttle_key("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
        assert_ne!(throttle_key("2001:db8:1:3::1"), throttle_key("2001:db8:1:2::1"));
        assert_eq!(throttle_key("198.51.100.7"), "198.51.100.7");
        assert_eq!(throttle_key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(throttle_key("unknown"), "unknown");
    }
}
