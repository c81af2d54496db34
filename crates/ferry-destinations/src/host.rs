//! What the kinds that log in to a server by host name share (email and
//! sftp): reading `host` and `port`, and checking the login's user name.

use ferry_core::FieldError;

use crate::endpoint;
use crate::fields::Fields;
use crate::net_guard::NetworkPolicy;

/// The longest host name (RFC 1035).
const MAX_HOST_LEN: usize = 253;

/// Reads `host`: a host name or an IP address, which the SSRF guard checks
/// (IP literals and `localhost` names). `first` runs before those checks,
/// for a kind's own rule.
pub fn read_host(
    fields: &mut Fields<'_>,
    policy: &NetworkPolicy,
    first: impl FnOnce(&str) -> Result<(), String>,
) -> Option<String> {
    let host = fields.text("host", None, MAX_HOST_LEN);
    fields.checked("host", host, |host| {
        first(host)?;
        check_host(host, policy)
    })
}

/// Reads `port` (1 to 65535); `default` when absent.
pub fn read_port(fields: &mut Fields<'_>, default: u16) -> Option<u16> {
    fields
        .u64_in("port", 1, u64::from(u16::MAX), u64::from(default))
        .map(|port| port as u16)
}

/// The error of a login's user name that is empty or holds a control
/// character, if it does.
pub fn check_username(username: &str) -> Option<FieldError> {
    (username.is_empty() || username.chars().any(char::is_control))
        .then(|| FieldError::new("auth.username", "is required (no control characters)"))
}

fn check_host(host: &str, policy: &NetworkPolicy) -> Result<(), String> {
    let bare = endpoint::bare_host(host);
    let is_ip = bare.parse::<std::net::IpAddr>().is_ok();
    let valid_name = || {
        host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    if !is_ip && !valid_name() {
        return Err("must be a host name or an IP address".into());
    }
    endpoint::check_host(policy, host)
}
