//! Tests of the network policy: every refused range, the IPv6 forms of
//! IPv4 addresses, the allowlist and CIDR parsing.

use super::*;

fn guard() -> NetworkPolicy {
    NetworkPolicy::default()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn refused_addresses_by_reason() {
    let table = [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("0.1.2.3", "a \"this network\" address"),
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.0.1", "a link-local address"),
        (
            "169.254.169.254",
            "a link-local address (the cloud metadata service)",
        ),
        ("fe80::1", "a link-local address"),
        ("febf::1", "a link-local address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("100.64.0.1", "a carrier-grade NAT (shared) address"),
        ("100.127.255.255", "a carrier-grade NAT (shared) address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.0.8", "a reserved (IETF protocol) address"),
        ("192.0.2.1", "a documentation address"),
        ("198.51.100.7", "a documentation address"),
        ("203.0.113.9", "a documentation address"),
        ("2001:db8::1", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("fec0::1", "a site-local address"),
        ("100::1", "a discard-only address"),
        ("2001::1", "a Teredo tunnel address"),
        ("64:ff9b:1::1", "a local-use NAT64 address"),
    ];
    for (text, reason) in table {
        let refusal = guard().check(ip(text)).unwrap_err();
        assert_eq!(
            (text, refusal.reason, refusal.embedded),
            (text, reason, None)
        );
    }
}

#[test]
fn ipv6_forms_of_refused_ipv4_addresses_are_refused() {
    let table = [
        ("::ffff:127.0.0.1", "127.0.0.1", "a loopback address"),
        ("::ffff:7f00:1", "127.0.0.1", "a loopback address"),
        ("::ffff:10.1.2.3", "10.1.2.3", "a private address"),
        (
            "::ffff:169.254.169.254",
            "169.254.169.254",
            "a link-local address (the cloud metadata service)",
        ),
        ("::127.0.0.1", "127.0.0.1", "a loopback address"),
        ("::192.168.0.1", "192.168.0.1", "a private address"),
        ("64:ff9b::10.0.0.1", "10.0.0.1", "a private address"),
        ("64:ff9b::7f00:1", "127.0.0.1", "a loopback address"),
        ("2002:7f00:1::", "127.0.0.1", "a loopback address"),
        ("2002:a00:1:5::1", "10.0.0.1", "a private address"),
        ("::ffff:0.0.0.0", "0.0.0.0", "the unspecified address"),
    ];
    for (text, embedded, reason) in table {
        let refusal = guard().check(ip(text)).unwrap_err();
        assert_eq!(refusal.embedded, Some(embedded.parse().unwrap()), "{text}");
        assert_eq!(refusal.reason, reason, "{text}");
    }
}

#[test]
fn public_addresses_are_allowed() {
    for text in [
        "1.1.1.1",
        "8.8.8.8",
        "93.184.215.14",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "169.253.255.255",
        "223.255.255.255",
        "192.0.1.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::1.1.1.1",
        "2002:808:808::1",
    ] {
        assert!(guard().allows(ip(text)), "{text}");
    }
}

#[test]
fn refusals_read_as_a_sentence_saying_how_to_allow() {
    assert_eq!(
        guard().check(ip("127.0.0.1")).unwrap_err().to_string(),
        "127.0.0.1 is a loopback address; private networks are refused \
         (set FERRY_ALLOW_PRIVATE_NETWORKS=true or allow a CIDR)"
    );
    let mapped = guard()
        .check(ip("::ffff:127.0.0.1"))
        .unwrap_err()
        .to_string();
    assert!(
        mapped.starts_with("::ffff:127.0.0.1 embeds 127.0.0.1, which is a loopback address;"),
        "{mapped}"
    );
}

#[test]
fn allow_private_opens_everything() {
    let open = NetworkPolicy::allow_all();
    for text in [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "::ffff:127.0.0.1",
        "ff02::1",
    ] {
        assert!(open.allows(ip(text)), "{text}");
    }
}

#[test]
fn an_allowlist_opens_only_its_networks() {
    let policy = NetworkPolicy {
        allow_private: false,
        allowed: parse_cidrs(&["127.0.0.0/8".into(), "fd00::/8".into()]).unwrap(),
    };
    assert!(policy.allows(ip("127.0.0.1")));
    assert!(policy.allows(ip("127.1.2.3")));
    assert!(policy.allows(ip("::ffff:127.0.0.1")));
    assert!(policy.allows(ip("fd00::5")));
    assert!(!policy.allows(ip("::1")));
    assert!(!policy.allows(ip("10.0.0.1")));
    assert!(!policy.allows(ip("fc00::1")));
    assert!(!policy.allows(ip("169.254.169.254")));
}

#[test]
fn cidrs_parse_strictly_with_clear_errors() {
    let parsed: IpCidr = "10.0.0.0/8".parse().unwrap();
    assert_eq!((parsed.network(), parsed.prefix()), (ip("10.0.0.0"), 8));
    assert_eq!(
        "10.0.0.0/8".parse::<IpCidr>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        " fd00::/8 ".parse::<IpCidr>().unwrap().to_string(),
        "fd00::/8"
    );
    assert_eq!(
        "1.2.3.4".parse::<IpCidr>().unwrap().to_string(),
        "1.2.3.4/32"
    );
    assert_eq!("::1".parse::<IpCidr>().unwrap().to_string(), "::1/128");
    assert_eq!("0.0.0.0/0".parse::<IpCidr>().unwrap().prefix(), 0);
    assert_eq!(
        "10.1.2.3/8".parse::<IpCidr>().unwrap_err(),
        "`10.1.2.3/8` has host bits set (did you mean 10.0.0.0/8?)"
    );
    for bad in [
        "",
        "10.0.0.0/33",
        "::/129",
        "10.0.0/8",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "x/8",
        "10.0.0.0/8/8",
    ] {
        let error = bad.parse::<IpCidr>().unwrap_err();
        assert!(error.contains(&format!("`{}`", bad.trim())), "{error}");
    }
    let error =
        parse_cidrs(&["10.0.0.0/8".into(), "nope".into(), "1.2.3.4/40".into()]).unwrap_err();
    assert!(error.starts_with("allowed CIDRs: `nope`"), "{error}");
    assert!(error.contains("`1.2.3.4/40`"), "{error}");
    assert_eq!(parse_cidrs(&[]).unwrap(), vec![]);
    assert!(IpCidr::new(ip("10.0.0.1"), 8).is_none());
    assert!(IpCidr::new(ip("10.0.0.0"), 33).is_none());
    assert!(
        IpCidr::new(ip("10.0.0.0"), 8)
            .unwrap()
            .contains(ip("10.255.0.1"))
    );
    assert!(
        !IpCidr::new(ip("10.0.0.0"), 8)
            .unwrap()
            .contains(ip("::ffff:10.0.0.1"))
    );
}

#[test]
fn localhost_names_are_recognized() {
    for name in [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "a.localhost",
        "x.y.LocalHost.",
    ] {
        assert!(is_localhost_name(name), "{name}");
    }
    for name in ["localhost.com", "notlocalhost", "example.com", "localhostx"] {
        assert!(!is_localhost_name(name), "{name}");
    }
}

#[test]
fn lookups_keep_allowed_addresses_and_fail_when_none_is_left() {
    let sock = |text: &str| -> SocketAddr { text.parse().unwrap() };
    let mixed = [sock("10.0.0.1:0"), sock("93.184.215.14:0"), sock("[::1]:0")];
    assert_eq!(
        guard().filter_resolved("example.com", mixed),
        Ok(vec![sock("93.184.215.14:0")])
    );
    let error = guard()
        .filter_resolved(
            "rebind.example.",
            [sock("10.0.0.1:0"), sock("10.0.0.1:0"), sock("[::1]:0")],
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "rebind.example resolves only to private addresses (10.0.0.1, ::1): refused; \
         private networks are refused (set FERRY_ALLOW_PRIVATE_NETWORKS=true or allow a CIDR)"
    );
    assert_eq!(guard().filter_resolved("nothing.example", []), Ok(vec![]));
    assert_eq!(
        NetworkPolicy::allow_all().filter_resolved("x", [sock("10.0.0.1:0")]),
        Ok(vec![sock("10.0.0.1:0")])
    );
}

#[test]
fn url_hosts_are_checked_without_a_lookup() {
    let check = |policy: &NetworkPolicy, text: &str| policy.check_url_host(&text.parse().unwrap());
    for url in [
        "http://127.0.0.1/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://localhost:1234/",
        "https://LocalHost./x",
        "http://api.localhost/",
    ] {
        assert!(check(&guard(), url).is_err(), "{url}");
        assert!(check(&NetworkPolicy::allow_all(), url).is_ok(), "{url}");
    }
    assert_eq!(
        check(&guard(), "http://localhost:1234/").unwrap_err(),
        "localhost is a loopback name; private networks are refused \
         (set FERRY_ALLOW_PRIVATE_NETWORKS=true or allow a CIDR)"
    );
    for url in [
        "https://example.com/",
        "http://8.8.8.8/",
        "http://internal.corp/",
    ] {
        assert!(check(&guard(), url).is_ok(), "{url}");
    }
    let loopback = NetworkPolicy {
        allow_private: false,
        allowed: parse_cidrs(&["127.0.0.0/8".into()]).unwrap(),
    };
    assert!(check(&loopback, "http://localhost/").is_ok());
    assert!(check(&loopback, "http://127.0.0.1/").is_ok());
    assert!(check(&loopback, "http://[::1]/").is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A v4 address and its IPv4-mapped, IPv4-compatible and NAT64
        /// forms get the same verdict.
        #[test]
        fn embedded_forms_share_the_verdict(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            let verdict = guard().allows(IpAddr::V4(v4));
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let nat64 = IpAddr::V6(Ipv6Addr::from((0x64_ff9bu128 << 96) | u128::from(bits)));
            prop_assert_eq!(guard().allows(mapped), verdict);
            prop_assert_eq!(guard().allows(nat64), verdict);
            if bits > 1 {
                let compatible = IpAddr::V6(v4.to_ipv6_compatible());
                prop_assert_eq!(guard().allows(compatible), verdict);
            }
        }

        /// The guard agrees with the standard library where it has a
        /// stable opinion.
        #[test]
        fn std_categories_are_refused(bits: u32, bits6: u128) {
            let v4 = Ipv4Addr::from(bits);
            if v4.is_loopback() || v4.is_private() || v4.is_link_local()
                || v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified()
                || v4.is_documentation()
            {
                prop_assert!(!guard().allows(IpAddr::V4(v4)));
            }
            let v6 = Ipv6Addr::from(bits6);
            if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast()
                || v6.is_unique_local() || v6.is_unicast_link_local()
            {
                prop_assert!(!guard().allows(IpAddr::V6(v6)));
            }
        }

        /// A CIDR contains exactly the addresses sharing its prefix, and
        /// its text form reads back to itself.
        #[test]
        fn cidrs_contain_their_prefix(bits: u32, other: u32, prefix in 0u8..=32) {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let cidr = IpCidr::new(IpAddr::V4(Ipv4Addr::from(bits & mask)), prefix).unwrap();
            prop_assert!(cidr.contains(IpAddr::V4(Ipv4Addr::from(bits))));
            prop_assert_eq!(
                cidr.contains(IpAddr::V4(Ipv4Addr::from(other))),
                other & mask == bits & mask
            );
            prop_assert_eq!(cidr.to_string().parse::<IpCidr>(), Ok(cidr));
        }

        /// Allowing a network allows every address in it.
        #[test]
        fn the_allowlist_wins(bits6: u128, prefix in 0u8..=128) {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            let cidr = IpCidr::new(IpAddr::V6(Ipv6Addr::from(bits6 & mask)), prefix).unwrap();
            let policy = NetworkPolicy { allow_private: false, allowed: vec![cidr] };
            prop_assert!(policy.allows(IpAddr::V6(Ipv6Addr::from(bits6))));
        }
    }
}
