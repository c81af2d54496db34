//! The SSRF guard ([`crate::net_guard`]) for kinds that connect over their
//! own protocol: the host of a broker or database URL is checked when the
//! destination is created (IP literals and `localhost` names), and its
//! looked-up addresses are checked before every new connection.
//!
//! Clients that take a resolver (Redis) connect only to the addresses the
//! guard kept; the others connect by name after this check, so a DNS answer
//! that changes between the check and the client's own lookup is the one
//! gap left (the check still refuses every name that resolves to a
//! refused address).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_core::ports::AttemptError;
use url::Url;

use crate::fields::Fields;
use crate::net_guard::{HOW_TO_ALLOW, NetworkPolicy, is_localhost_name};

/// The host of a URL without IPv6 brackets (`[::1]` → `::1`).
pub fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The config's required `url`, checked by `check` (whose error is
/// recorded on `config.url`).
pub fn read_url(
    fields: &mut Fields<'_>,
    check: impl FnOnce(&str) -> Result<Url, String>,
) -> Option<Url> {
    let text = fields.required_str("url")?;
    check(&text)
        .map_err(|message| fields.error("url", message))
        .ok()
}

/// A broker URL's scheme, host and (absent) credentials: one of `schemes`
/// (else the error says it must be `expected`) naming a host. Credentials
/// are refused: they belong in `auth` (of the types `auth_types` names),
/// where they are sealed at rest. The host is not checked yet (see
/// [`check_host`]).
pub fn parse_broker_url(
    text: &str,
    schemes: &[&str],
    expected: &str,
    auth_types: &str,
) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("must be {expected}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "must not contain credentials; use `auth` ({auth_types}), where they are encrypted at rest"
        ));
    }
    Ok(url)
}

/// A broker URL ([`parse_broker_url`]) of nothing but scheme, host and
/// port, whose host the guard allows.
pub fn check_broker_url(
    text: &str,
    schemes: &[&str],
    expected: &str,
    auth_types: &str,
    policy: &NetworkPolicy,
) -> Result<Url, String> {
    let url = parse_broker_url(text, schemes, expected, auth_types)?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err("must be only scheme, host and port".to_owned());
    }
    check_host(policy, url.host_str().unwrap_or_default())?;
    Ok(url)
}

/// Checks a host without a lookup: an IP literal against the policy, and
/// `localhost` names (refused unless loopback is allowed). `url`'s parser
/// keeps IPv4 literals of non-HTTP schemes as names, hence this check on
/// the text. Other names are Ok here and checked by [`resolve`].
pub fn check_host(policy: &NetworkPolicy, host: &str) -> Result<(), String> {
    let host = bare_host(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return policy.check(ip).map_err(|refusal| refusal.to_string());
    }
    if is_localhost_name(host) {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        return policy
            .check(loopback)
            .map_err(|_| format!("{host} is a loopback name; {HOW_TO_ALLOW}"));
    }
    Ok(())
}

/// Looks `host` up (at most `limit`) and keeps the addresses the policy
/// allows. A failed lookup is retryable (DNS may recover); a name whose
/// every address is refused is permanent (a retry cannot change a policy).
pub async fn resolve(
    policy: &NetworkPolicy,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Vec<SocketAddr>, AttemptError> {
    let host = bare_host(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        policy
            .check(ip)
            .map_err(|refusal| AttemptError::permanent(refusal.to_string()))?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(found)) => found.collect::<Vec<_>>(),
        Ok(Err(error)) => {
            return Err(AttemptError::retryable(format!(
                "DNS lookup of {host} failed: {error}"
            )));
        }
        Err(_) => {
            return Err(AttemptError::retryable(format!(
                "DNS lookup of {host} timed out after {} ms",
                limit.as_millis()
            )));
        }
    };
    let allowed = policy
        .filter_resolved(host, found)
        .map_err(|refused| AttemptError::permanent(refused.to_string()))?;
    if allowed.is_empty() {
        return Err(AttemptError::retryable(format!(
            "DNS lookup of {host} found no address"
        )));
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost_are_checked_without_a_lookup() {
        let strict = NetworkPolicy::default();
        for host in [
            "127.0.0.1",
            "[::1]",
            "10.1.2.3",
            "localhost",
            "db.localhost",
        ] {
            assert!(check_host(&strict, host).is_err(), "{host}");
            assert!(
                check_host(&NetworkPolicy::allow_all(), host).is_ok(),
                "{host}"
            );
        }
        assert!(check_host(&strict, "broker.example.com").is_ok());
        assert!(check_host(&strict, "93.184.216.34").is_ok());
        let message = check_host(&strict, "localhost").unwrap_err();
        assert!(message.contains("loopback"), "{message}");
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_permanent() {
        let strict = NetworkPolicy::default();
        let failure = resolve(&strict, "localhost", 6379, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(failure.is_permanent(), "{failure:?}");
        let allowed = resolve(
            &NetworkPolicy::allow_all(),
            "localhost",
            6379,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(
            allowed
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 6379)
        );
    }
}
