//! The SSRF guard's policy: which IP addresses a destination may reach.
//!
//! Pure and small on purpose. Loopback, private, link-local, unique-local,
//! carrier-grade NAT, multicast, broadcast, documentation and other
//! reserved ranges are refused, and so are the IPv6 forms that embed one of
//! those IPv4 addresses (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`). An
//! allowlist of CIDRs re-opens chosen ranges; `allow_private` opens
//! everything. The webhook kind applies it when a destination is created
//! (IP-literal and `localhost` URLs), before each request (IP literals,
//! which never reach a resolver) and in its DNS resolver (every other host,
//! so DNS rebinding cannot reach a refused address).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// How to open a refused address, appended to every refusal.
pub(crate) const HOW_TO_ALLOW: &str =
    "private networks are refused (set FERRY_ALLOW_PRIVATE_NETWORKS=true or allow a CIDR)";

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `fd00::/8`. A bare address is
/// a network of that one address (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// A network from its first address and prefix length; `None` when the
    /// prefix is too long for the family or host bits are set.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Self> {
        let cidr = Self { network, prefix };
        (prefix <= max_prefix(network) && cidr.masked(network) == network).then_some(cidr)
    }

    /// The first address of the network.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network (always false across families; the
    /// policy looks at IPv4 addresses embedded in IPv6 ones itself).
    pub fn contains(&self, ip: IpAddr) -> bool {
        same_family(self.network, ip) && self.masked(ip) == self.network
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for IpCidr {
    type Err = String;

    /// Reads `a.b.c.d/n`, `x:y::z/n` or a bare address. Host bits must be
    /// zero (`10.1.2.3/8` is refused, naming `10.0.0.0/8`).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("`{text}` is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)")
        })?;
        let max = max_prefix(network);
        let prefix = match prefix {
            None => max,
            Some(digits) => match digits.parse::<u8>() {
                Ok(prefix) if prefix <= max && digits.bytes().all(|b| b.is_ascii_digit()) => prefix,
                _ => {
                    return Err(format!(
                        "`{text}` has an invalid prefix length (0 to {max} for this address)"
                    ));
                }
            },
        };
        let cidr = Self { network, prefix };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(format!(
                "`{text}` has host bits set (did you mean {masked}/{prefix}?)"
            ));
        }
        Ok(cidr)
    }
}

/// Reads an allowlist of CIDRs; the error names every invalid entry.
pub fn parse_cidrs(entries: &[String]) -> Result<Vec<IpCidr>, String> {
    let mut cidrs = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for entry in entries {
        match entry.parse() {
            Ok(cidr) => cidrs.push(cidr),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(cidrs)
    } else {
        Err(format!("allowed CIDRs: {}", errors.join("; ")))
    }
}

/// Which addresses destinations may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Every address is allowed (`FERRY_ALLOW_PRIVATE_NETWORKS=true`).
    pub allow_private: bool,
    /// Networks allowed even though they are private or reserved.
    pub allowed: Vec<IpCidr>,
}

/// Why an address is refused; its `Display` is the sentence shown to users:
/// `127.0.0.1 is a loopback address; private networks are refused (…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The refused address.
    pub ip: IpAddr,
    /// What it is, e.g. `a loopback address`.
    pub reason: &'static str,
    /// The IPv4 address an IPv6 one embeds, when that is what is refused.
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(
                f,
                "{} embeds {v4}, which is {}; {HOW_TO_ALLOW}",
                self.ip, self.reason
            ),
            None => write!(f, "{} is {}; {HOW_TO_ALLOW}", self.ip, self.reason),
        }
    }
}

impl std::error::Error for Refusal {}

impl NetworkPolicy {
    /// The policy that allows every address.
    pub fn allow_all() -> Self {
        Self {
            allow_private: true,
            allowed: Vec::new(),
        }
    }

    /// Ok when `ip` may be reached, else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private || self.is_allowlisted(ip) {
            return Ok(());
        }
        let (reason, embedded) = match classify(ip) {
            None => return Ok(()),
            Some(Class::Refused(reason)) => (reason, None),
            Some(Class::Embeds(v4)) => {
                if self.is_allowlisted(IpAddr::V4(v4)) {
                    return Ok(());
                }
                match classify_v4(v4) {
                    None => return Ok(()),
                    Some(reason) => (reason, Some(v4)),
                }
            }
        };
        Err(Refusal {
            ip,
            reason,
            embedded,
        })
    }

    /// Whether `ip` may be reached.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }

    /// Checks the host of a URL without a lookup: an IP literal against the
    /// policy (connections to one never go through a resolver), and
    /// `localhost` names (refused unless loopback is allowed). Other names
    /// are Ok here; they are checked after their lookup.
    pub fn check_url_host(&self, url: &url::Url) -> Result<(), String> {
        match url.host() {
            Some(url::Host::Domain(name)) if is_localhost_name(name) => {
                let loopback = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
                if loopback.into_iter().any(|ip| self.allows(ip)) {
                    Ok(())
                } else {
                    Err(format!("{name} is a loopback name; {HOW_TO_ALLOW}"))
                }
            }
            _ => self
                .check_ip_literal(url)
                .map_err(|refusal| refusal.to_string()),
        }
    }

    /// Checks the host of a URL when it is an IP literal (Ok for names).
    pub fn check_ip_literal(&self, url: &url::Url) -> Result<(), Refusal> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) | None => Ok(()),
        }
    }

    fn is_allowlisted(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|cidr| cidr.contains(ip))
    }
}

/// Whether a host name (not an IP literal) is refused without a lookup:
/// `localhost` and every `*.localhost` name (RFC 6761), with or without the
/// trailing dot, in any case.
pub fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// A host name whose every address is refused (at connect time, after
/// the lookup): `localhost resolves only to private addresses (127.0.0.1):
/// refused; …`. A retry cannot fix a policy, so deliveries fail for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedToRefused {
    /// The name looked up.
    pub host: String,
    /// Its addresses, all refused.
    pub addresses: Vec<IpAddr>,
}

impl fmt::Display for ResolvedToRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 4;
        let mut shown: Vec<String> = self
            .addresses
            .iter()
            .take(SHOWN)
            .map(ToString::to_string)
            .collect();
        if self.addresses.len() > SHOWN {
            shown.push(format!("and {} more", self.addresses.len() - SHOWN));
        }
        write!(
            f,
            "{} resolves only to private addresses ({}): refused; {HOW_TO_ALLOW}",
            self.host,
            shown.join(", ")
        )
    }
}

impl std::error::Error for ResolvedToRefused {}

impl NetworkPolicy {
    /// Keeps the looked-up addresses of `host` that may be reached, in
    /// order. An error when there were some and every one is refused; an
    /// empty lookup stays empty (the connector reports it).
    pub fn filter_resolved(
        &self,
        host: &str,
        addresses: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, ResolvedToRefused> {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for address in addresses {
            let ip = address.ip();
            if self.allows(ip) {
                allowed.push(address);
            } else if !refused.contains(&ip) {
                refused.push(ip);
            }
        }
        if allowed.is_empty() && !refused.is_empty() {
            return Err(ResolvedToRefused {
                host: host.strip_suffix('.').unwrap_or(host).to_owned(),
                addresses: refused,
            });
        }
        Ok(allowed)
    }
}

enum Class {
    Refused(&'static str),
    /// An IPv6 address that reaches (or names) this IPv4 address.
    Embeds(Ipv4Addr),
}

fn classify(ip: IpAddr) -> Option<Class> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(Class::Refused),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpCidr {
    IpCidr {
        network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        prefix,
    }
}

/// Refused IPv4 ranges, the most specific first.
const REFUSED_V4: &[(IpCidr, &str)] = &[
    (v4(0, 0, 0, 0, 32), "the unspecified address"),
    (v4(255, 255, 255, 255, 32), "the broadcast address"),
    (
        v4(169, 254, 169, 254, 32),
        "a link-local address (the cloud metadata service)",
    ),
    (v4(0, 0, 0, 0, 8), "a \"this network\" address"),
    (v4(10, 0, 0, 0, 8), "a private address"),
    (
        v4(100, 64, 0, 0, 10),
        "a carrier-grade NAT (shared) address",
    ),
    (v4(127, 0, 0, 0, 8), "a loopback address"),
    (v4(169, 254, 0, 0, 16), "a link-local address"),
    (v4(172, 16, 0, 0, 12), "a private address"),
    (v4(192, 0, 0, 0, 24), "a reserved (IETF protocol) address"),
    (v4(192, 0, 2, 0, 24), "a documentation address"),
    (v4(192, 168, 0, 0, 16), "a private address"),
    (v4(198, 18, 0, 0, 15), "a benchmarking address"),
    (v4(198, 51, 100, 0, 24), "a documentation address"),
    (v4(203, 0, 113, 0, 24), "a documentation address"),
    (v4(224, 0, 0, 0, 4), "a multicast address"),
    (v4(240, 0, 0, 0, 4), "a reserved address"),
];

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    REFUSED_V4
        .iter()
        .find(|(cidr, _)| cidr.contains(IpAddr::V4(ip)))
        .map(|(_, reason)| *reason)
}

const fn v6(segments: [u16; 8], prefix: u8) -> IpCidr {
    let [a, b, c, d, e, f, g, h] = segments;
    IpCidr {
        network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
        prefix,
    }
}

/// Refused IPv6 ranges (after the ones that embed an IPv4 address).
const REFUSED_V6: &[(IpCidr, &str)] = &[
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "a local-use NAT64 address",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "a discard-only address",
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "a Teredo tunnel address",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "a documentation address",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "a unique-local address",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "a link-local address",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "a site-local address",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast address"),
];

fn classify_v6(ip: Ipv6Addr) -> Option<Class> {
    if ip.is_unspecified() {
        return Some(Class::Refused("the unspecified address"));
    }
    if ip.is_loopback() {
        return Some(Class::Refused("a loopback address"));
    }
    if let Some(v4) = embedded_v4(ip) {
        return Some(Class::Embeds(v4));
    }
    REFUSED_V6
        .iter()
        .find(|(cidr, _)| cidr.contains(IpAddr::V6(ip)))
        .map(|(_, reason)| Class::Refused(reason))
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped `::ffff:0:0/96`,
/// IPv4-compatible `::/96` (deprecated, still routed by some stacks), NAT64
/// `64:ff9b::/96` and 6to4 `2002::/16`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let high96 = bits >> 32;
    if high96 == 0xffff || high96 == 0 || high96 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low);
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

#[cfg(any(feature = "webhook", feature = "s3"))]
mod resolver;
#[cfg(test)]
mod tests;

#[cfg(any(feature = "webhook", feature = "s3"))]
pub use resolver::GuardedResolver;
