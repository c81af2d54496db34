//! Reading a TLS failure out of a client's error: which certificate, and
//! what is wrong with it. Some clients keep only the text of the TLS error
//! (the Redis and MQTT clients turn it into a string on the way), so the
//! failure is read from the text rustls gives its errors, the same in all
//! of them: `invalid peer certificate: …` and `received fatal alert: …`.

use ferry_core::ports::AttemptError;

const UNTRUSTED: &str = "invalid peer certificate: ";
const ALERT: &str = "received fatal alert: ";

/// Alerts a server sends when it refuses the client's certificate.
const CLIENT_CERTIFICATE_REFUSED: &[&str] = &[
    "BadCertificate",
    "UnknownCA",
    "CertificateUnknown",
    "UnsupportedCertificate",
    "CertificateExpired",
    "CertificateRevoked",
    "AccessDenied",
];

/// The certificate problem in an error or its sources, as a permanent
/// failure that says what is wrong with which certificate; `None` when the
/// error is not one. `peer` names the server (`the MQTT broker`). A retry
/// cannot fix a certificate.
pub fn certificate_failure(
    error: &(dyn std::error::Error + 'static),
    peer: &str,
) -> Option<AttemptError> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(message) = describe(&cause.to_string(), peer) {
            return Some(AttemptError::permanent(message));
        }
        current = cause.source();
    }
    None
}

fn describe(text: &str, peer: &str) -> Option<String> {
    if let Some((_, reason)) = text.split_once(UNTRUSTED) {
        let why = if reason.starts_with("UnknownIssuer") {
            "it is not signed by a trusted CA (set `tls.ca_certificate` to the CA that signed it)"
        } else {
            reason
        };
        return Some(format!(
            "TLS failed: the certificate of {peer} is not trusted: {why}"
        ));
    }
    let (_, alert) = text.split_once(ALERT)?;
    let alert = alert
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    Some(match alert {
        "CertificateRequired" => format!(
            "TLS failed: {peer} requires a client certificate (set `auth` of type client_certificate)"
        ),
        "HandshakeFailure" => format!(
            "TLS failed: {peer} refused the handshake (HandshakeFailure: does it require a client certificate?)"
        ),
        refused if CLIENT_CERTIFICATE_REFUSED.contains(&refused) => format!(
            "TLS failed: {peer} did not accept the client certificate of `auth` ({refused})"
        ),
        other => format!("TLS failed: {peer} ended the handshake ({other})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_certificate_problem_wherever_the_error_text_carries_it() {
        let untrusted = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let failure = certificate_failure(&untrusted, "the broker").unwrap();
        assert!(failure.is_permanent());
        assert!(
            failure
                .reason()
                .contains("certificate of the broker is not trusted")
                && failure.reason().contains("tls.ca_certificate"),
            "{failure}"
        );
        let required = describe(
            "connection failed: received fatal alert: CertificateRequired",
            "the server",
        )
        .unwrap();
        assert!(
            required.contains("requires a client certificate"),
            "{required}"
        );
        let refused = describe("received fatal alert: UnknownCA", "the server").unwrap();
        assert!(
            refused.contains("did not accept the client certificate"),
            "{refused}"
        );
        assert_eq!(describe("connection refused", "the server"), None);
    }
}
