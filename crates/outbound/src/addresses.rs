//! Which IP addresses a fetch chosen by a stranger may reach: the table of special-purpose
//! blocks, taken row by row from the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! (every block that is not globally reachable, plus documentation and benchmarking), and the
//! rule that decides with it.
//!
//! IPv6 is judged by an allow-list first: outside Global Unicast (`2000::/3`, IANA IPv6 Address
//! Space registry) nothing is public, which covers blocks the special-purpose registry does not
//! list, such as the deprecated site-local `fec0::/10` and multicast. IPv4-mapped and NAT64
//! addresses are judged by the IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// What a special-purpose IPv6 block means for a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ipv6Use {
    /// Never fetched from.
    Refused,
    /// Carries an IPv4 address in its last 32 bits: judged as that address.
    EmbedsIpv4,
}

/// One row of a registry: its name there, and the block.
struct Row<Net> {
    name: &'static str,
    net: Net,
}

const fn v4(name: &'static str, a: u8, b: u8, c: u8, d: u8, len: u8) -> Row<Ipv4Net> {
    Row {
        name,
        net: Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len),
    }
}

const fn v6(name: &'static str, segments: [u16; 8], len: u8) -> Row<Ipv6Net> {
    let [a, b, c, d, e, f, g, h] = segments;
    Row {
        name,
        net: Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len),
    }
}

/// IPv4 blocks refused as fetch targets. The globally reachable rows of the registry
/// (AS112, AMT) are absent; `192.0.0.0/24` is refused whole, including the two anycast
/// addresses in it that are globally reachable (PCP, TURN): no metadata document lives there.
const IPV4_REFUSED: &[Row<Ipv4Net>] = &[
    v4("\"This network\" (RFC 791)", 0, 0, 0, 0, 8),
    v4("\"This host on this network\" (RFC 1122)", 0, 0, 0, 0, 32),
    v4("Private-Use (RFC 1918)", 10, 0, 0, 0, 8),
    v4("Shared Address Space (RFC 6598)", 100, 64, 0, 0, 10),
    v4("Loopback (RFC 1122)", 127, 0, 0, 0, 8),
    v4("Link Local (RFC 3927)", 169, 254, 0, 0, 16),
    v4("Private-Use (RFC 1918)", 172, 16, 0, 0, 12),
    v4("IETF Protocol Assignments (RFC 6890)", 192, 0, 0, 0, 24),
    v4(
        "IPv4 Service Continuity Prefix (RFC 7335)",
        192,
        0,
        0,
        0,
        29,
    ),
    v4("IPv4 dummy address (RFC 7600)", 192, 0, 0, 8, 32),
    v4("NAT64/DNS64 Discovery (RFC 8880)", 192, 0, 0, 170, 31),
    v4("Documentation (TEST-NET-1, RFC 5737)", 192, 0, 2, 0, 24),
    v4(
        "Deprecated (6to4 Relay Anycast, RFC 7526)",
        192,
        88,
        99,
        0,
        24,
    ),
    v4("Private-Use (RFC 1918)", 192, 168, 0, 0, 16),
    v4("Benchmarking (RFC 2544)", 198, 18, 0, 0, 15),
    v4("Documentation (TEST-NET-2, RFC 5737)", 198, 51, 100, 0, 24),
    v4("Documentation (TEST-NET-3, RFC 5737)", 203, 0, 113, 0, 24),
    // Not in the special-purpose registry but never a unicast host: the multicast space.
    v4("Multicast (RFC 5771)", 224, 0, 0, 0, 4),
    v4("Reserved (RFC 1112)", 240, 0, 0, 0, 4),
    v4("Limited Broadcast (RFC 919)", 255, 255, 255, 255, 32),
];

/// The one IPv6 allocation where public hosts live (IANA IPv6 Address Space registry).
const GLOBAL_UNICAST: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// IPv6 blocks of the special-purpose registry (and the deprecated site-local block, which
/// only the address space registry lists), with what each means for a fetch. The globally
/// reachable rows inside `2001::/23` (anycast services, AMT, AS112, ORCHIDv2, drone remote ID)
/// are refused with the whole block; AS112's `2620:4f:8000::/48` is globally reachable and
/// absent.
const IPV6_SPECIAL: &[(Row<Ipv6Net>, Ipv6Use)] = &[
    (
        v6("Loopback Address (RFC 4291)", [0, 0, 0, 0, 0, 0, 0, 1], 128),
        Ipv6Use::Refused,
    ),
    (
        v6("Unspecified Address (RFC 4291)", [0; 8], 128),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "IPv4-mapped Address (RFC 4291)",
            [0, 0, 0, 0, 0, 0xffff, 0, 0],
            96,
        ),
        Ipv6Use::EmbedsIpv4,
    ),
    (
        v6(
            "IPv4-IPv6 Translat. (RFC 6052)",
            [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
            96,
        ),
        Ipv6Use::EmbedsIpv4,
    ),
    (
        v6(
            "IPv4-IPv6 Translat., local use (RFC 8215)",
            [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
            48,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Discard-Only Address Block (RFC 6666)",
            [0x100, 0, 0, 0, 0, 0, 0, 0],
            64,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Dummy IPv6 Prefix (RFC 9780)",
            [0x100, 0, 0, 1, 0, 0, 0, 0],
            64,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "IETF Protocol Assignments (RFC 2928)",
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
        ),
        Ipv6Use::Refused,
    ),
    // Teredo embeds an obfuscated IPv4 address and is reached through a relay: refused.
    (
        v6("TEREDO (RFC 4380)", [0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        Ipv6Use::Refused,
    ),
    (
        v6("Benchmarking (RFC 5180)", [0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Deprecated (previously ORCHID, RFC 4843)",
            [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
            28,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Documentation (RFC 3849)",
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
        ),
        Ipv6Use::Refused,
    ),
    // 6to4 embeds an IPv4 address too, but is reached through a relay that may sit anywhere,
    // in front of any network: refused whatever it carries.
    (
        v6("6to4 (RFC 3056)", [0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Documentation (RFC 9637)",
            [0x3fff, 0, 0, 0, 0, 0, 0, 0],
            20,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Segment Routing (SRv6) SIDs (RFC 9602)",
            [0x5f00, 0, 0, 0, 0, 0, 0, 0],
            16,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6("Unique-Local (RFC 4193)", [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Link-Local Unicast (RFC 4291)",
            [0xfe80, 0, 0, 0, 0, 0, 0, 0],
            10,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6(
            "Site-Local, deprecated (RFC 3879)",
            [0xfec0, 0, 0, 0, 0, 0, 0, 0],
            10,
        ),
        Ipv6Use::Refused,
    ),
    (
        v6("Multicast (RFC 4291)", [0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        Ipv6Use::Refused,
    ),
];

/// Why `ip` may not be fetched from: the registry row it falls in, or `None` for a globally
/// reachable address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => IPV4_REFUSED
            .iter()
            .find(|row| row.net.contains(&ip))
            .map(|row| row.name),
        IpAddr::V6(ip) => {
            // The most specific row decides: TEREDO before the block around it.
            let row = IPV6_SPECIAL
                .iter()
                .filter(|(row, _)| row.net.contains(&ip))
                .max_by_key(|(row, _)| row.net.prefix_len());
            match row {
                Some((_, Ipv6Use::EmbedsIpv4)) => {
                    let [.., a, b, c, d] = ip.octets();
                    refusal(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
                }
                Some((row, Ipv6Use::Refused)) => Some(row.name),
                None if !GLOBAL_UNICAST.contains(&ip) => {
                    Some("outside Global Unicast 2000::/3 (IANA IPv6 Address Space)")
                }
                None => None,
            }
        }
    }
}

/// Whether `ip` is a globally reachable unicast address that a fetch may go to.
pub fn is_public(ip: IpAddr) -> bool {
    refusal(ip).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_as(ip: &str) -> Option<&'static str> {
        refusal(ip.parse().expect("a test address"))
    }

    /// Each row refuses its first and last address, naming itself (or a row that covers it).
    #[test]
    fn every_ipv4_row_refuses_its_whole_block() {
        for row in IPV4_REFUSED {
            for ip in [row.net.network(), row.net.broadcast()] {
                assert!(refusal(IpAddr::V4(ip)).is_some(), "{} ({ip})", row.name);
            }
        }
    }

    #[test]
    fn every_ipv6_row_refuses_its_whole_block() {
        for (row, usage) in IPV6_SPECIAL {
            if *usage == Ipv6Use::EmbedsIpv4 {
                continue;
            }
            for ip in [row.net.network(), row.net.broadcast()] {
                assert!(refusal(IpAddr::V6(ip)).is_some(), "{} ({ip})", row.name);
            }
        }
    }

    // One test per registry row, with an address inside it that earlier guards missed or that
    // a neighbouring public block makes easy to get wrong.

    #[test]
    fn ipv4_this_network() {
        assert!(refused_as("0.1.2.3").is_some());
        assert!(refused_as("0.0.0.0").is_some());
    }

    #[test]
    fn ipv4_private_use() {
        for ip in ["10.255.0.1", "172.31.255.254", "192.168.1.1"] {
            assert_eq!(refused_as(ip), Some("Private-Use (RFC 1918)"), "{ip}");
        }
        assert_eq!(refused_as("172.32.0.1"), None);
    }

    #[test]
    fn ipv4_shared_address_space() {
        assert!(refused_as("100.127.255.255").is_some());
        assert_eq!(refused_as("100.128.0.1"), None);
    }

    #[test]
    fn ipv4_loopback_and_link_local() {
        assert!(refused_as("127.4.5.6").is_some());
        assert!(refused_as("169.254.169.254").is_some());
    }

    #[test]
    fn ipv4_ietf_protocol_assignments() {
        for ip in ["192.0.0.1", "192.0.0.8", "192.0.0.9", "192.0.0.171"] {
            assert!(refused_as(ip).is_some(), "{ip}");
        }
    }

    #[test]
    fn ipv4_documentation_and_benchmarking() {
        for ip in ["192.0.2.1", "198.51.100.7", "203.0.113.200", "198.19.255.1"] {
            assert!(refused_as(ip).is_some(), "{ip}");
        }
        assert_eq!(refused_as("198.20.0.1"), None);
    }

    #[test]
    fn ipv4_deprecated_6to4_relay_anycast() {
        assert!(refused_as("192.88.99.1").is_some());
    }

    #[test]
    fn ipv4_multicast_reserved_and_broadcast() {
        for ip in [
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(refused_as(ip).is_some(), "{ip}");
        }
    }

    #[test]
    fn ipv4_public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "140.82.112.3",
            "192.31.196.1",
            "223.255.255.1",
        ] {
            assert_eq!(refused_as(ip), None, "{ip}");
        }
    }

    #[test]
    fn ipv6_loopback_and_unspecified() {
        assert!(refused_as("::1").is_some());
        assert!(refused_as("::").is_some());
    }

    #[test]
    fn ipv6_ipv4_mapped_is_judged_by_its_ipv4() {
        assert_eq!(refused_as("::ffff:127.0.0.1"), Some("Loopback (RFC 1122)"));
        assert_eq!(
            refused_as("::ffff:10.0.0.1"),
            Some("Private-Use (RFC 1918)")
        );
        assert_eq!(refused_as("::ffff:8.8.8.8"), None);
    }

    #[test]
    fn ipv6_nat64_is_judged_by_its_ipv4() {
        assert_eq!(refused_as("64:ff9b::a00:1"), Some("Private-Use (RFC 1918)"));
        assert_eq!(
            refused_as("64:ff9b::a9fe:a9fe"),
            Some("Link Local (RFC 3927)")
        );
        assert_eq!(refused_as("64:ff9b::808:808"), None);
    }

    #[test]
    fn ipv6_nat64_local_use() {
        assert!(refused_as("64:ff9b:1::808:808").is_some());
    }

    #[test]
    fn ipv6_discard_only_and_dummy() {
        assert!(refused_as("100::1").is_some());
        assert!(refused_as("100:0:0:1::1").is_some());
    }

    #[test]
    fn ipv6_ietf_protocol_assignments_teredo_benchmarking_orchid() {
        assert_eq!(refused_as("2001:0:4136:e378::1"), Some("TEREDO (RFC 4380)"));
        assert_eq!(refused_as("2001:2::1"), Some("Benchmarking (RFC 5180)"));
        assert!(refused_as("2001:10::1").is_some());
        assert!(refused_as("2001:1::1").is_some());
        assert!(refused_as("2001:1ff::1").is_some());
        assert_eq!(refused_as("2001:200::1"), None);
    }

    #[test]
    fn ipv6_documentation() {
        assert_eq!(refused_as("2001:db8::1"), Some("Documentation (RFC 3849)"));
        assert_eq!(refused_as("3fff:fff::1"), Some("Documentation (RFC 9637)"));
    }

    #[test]
    fn ipv6_6to4_whatever_it_carries() {
        assert!(refused_as("2002:7f00:1::").is_some());
        assert!(refused_as("2002:808:808::1").is_some());
    }

    #[test]
    fn ipv6_segment_routing() {
        assert!(refused_as("5f00::1").is_some());
    }

    #[test]
    fn ipv6_unique_local_and_link_local() {
        assert!(refused_as("fc00::1").is_some());
        assert!(refused_as("fdff:ffff::1").is_some());
        assert!(refused_as("fe80::1").is_some());
        assert!(refused_as("febf::1").is_some());
    }

    #[test]
    fn ipv6_site_local_the_block_the_old_list_missed() {
        assert_eq!(
            refused_as("fec0::1"),
            Some("Site-Local, deprecated (RFC 3879)")
        );
        assert!(refused_as("feff::1").is_some());
    }

    #[test]
    fn ipv6_multicast_and_everything_outside_global_unicast() {
        assert!(refused_as("ff02::1").is_some());
        // IPv4-compatible (deprecated), and unassigned space.
        assert!(refused_as("::7f00:1").is_some());
        assert!(refused_as("4000::1").is_some());
        assert!(refused_as("e000::1").is_some());
    }

    #[test]
    fn ipv6_public_addresses_pass() {
        for ip in ["2606:4700::1111", "2a00:1450:4001::200e", "2620:4f:8000::1"] {
            assert_eq!(refused_as(ip), None, "{ip}");
        }
    }
}
