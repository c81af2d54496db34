//! TLS settings shared by the broker and database kinds, in one shape for
//! all of them. TLS itself is asked for by the URL (`rediss://`, `amqps://`,
//! `mqtts://`, `tls://` NATS servers, `sslmode`/`ssl-mode` for SQL); the
//! config's optional `tls` object adds what the URL cannot carry:
//!
//! ```json
//! "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}
//! ```
//!
//! `ca_certificate` (PEM, one or more certificates) replaces the system's
//! trust roots for this destination. A client certificate is a secret and
//! comes from the destination's auth (`type: client_certificate`, PEM chain
//! and private key, optionally with a user name and password).

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use crate::fields::Fields;

/// The config's `tls` object, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM trust roots replacing the system's.
    pub ca_certificate: Option<String>,
}

impl TlsConfig {
    /// The normalized JSON of the config's `tls` field (`null` when unset).
    pub fn to_json(&self) -> Value {
        match &self.ca_certificate {
            Some(ca) => json!({"ca_certificate": ca}),
            None => Value::Null,
        }
    }
}

/// A TLS client certificate and its key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub certificate: String,
    pub private_key: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity { private_key: *** }")
    }
}

/// Reads the config's `tls` field; `url_uses_tls` says whether the URL asks
/// for TLS (a `tls` object on a plain-text URL is a mistake worth naming:
/// the CA would be silently unused). `scheme_hint` tells how to ask for it.
fn read(fields: &mut Fields<'_>, url_uses_tls: bool, scheme_hint: &str) -> Option<TlsConfig> {
    let raw = fields.raw("tls")?.clone();
    let Value::Object(map) = raw else {
        fields.error(
            "tls",
            "must be an object like {\"ca_certificate\": \"<PEM>\"}",
        );
        return None;
    };
    let mut ok = true;
    for key in map.keys() {
        if key != "ca_certificate" {
            fields.error(
                &format!("tls.{key}"),
                "unknown field (expected ca_certificate)",
            );
            ok = false;
        }
    }
    let ca_certificate = match map.get("ca_certificate") {
        None | Some(Value::Null) => None,
        Some(Value::String(pem)) => match check_certificates(pem) {
            Ok(()) => Some(pem.clone()),
            Err(message) => {
                fields.error("tls.ca_certificate", message);
                ok = false;
                None
            }
        },
        Some(_) => {
            fields.error("tls.ca_certificate", "must be a PEM string");
            ok = false;
            None
        }
    };
    if !url_uses_tls {
        fields.error(
            "tls",
            format!("is set but the URL does not use TLS ({scheme_hint})"),
        );
        ok = false;
    }
    ok.then_some(TlsConfig { ca_certificate })
}

/// Reads the config's `tls` field (as `read` does) and checks that a client
/// certificate in `auth` has TLS to travel on. `uses_tls` says whether the
/// URL asks for TLS (`None`: the URL is invalid, which is reported
/// already); `hint` tells how to ask for it.
pub fn read_with_auth(
    fields: &mut Fields<'_>,
    auth: &Auth,
    uses_tls: Option<bool>,
    hint: &str,
) -> Option<Option<TlsConfig>> {
    let tls = match fields.raw("tls") {
        None => Some(None),
        Some(_) => read(fields, uses_tls.unwrap_or(false), hint).map(Some),
    };
    if matches!(auth, Auth::ClientCertificate { .. }) && uses_tls == Some(false) {
        fields.error("auth.type", format!("client_certificate needs TLS: {hint}"));
    }
    tls
}

/// Checks a `client_certificate` auth (PEM chain and key); errors name
/// `auth.certificate` / `auth.private_key` and never quote the key.
pub fn check_identity(certificate: &str, private_key: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(message) = check_certificates(certificate) {
        errors.push(FieldError::new("auth.certificate", message));
    }
    if PrivateKeyDer::from_pem_slice(private_key.as_bytes()).is_err() {
        errors.push(FieldError::new(
            "auth.private_key",
            "must be a PEM private key (PKCS#8, PKCS#1 or SEC1)",
        ));
    }
    errors
}

/// The client identity of an auth, when it is a client certificate.
pub fn identity(auth: &Auth) -> Option<ClientIdentity> {
    match auth {
        Auth::ClientCertificate {
            certificate,
            private_key,
            ..
        } => Some(ClientIdentity {
            certificate: certificate.clone(),
            private_key: private_key.expose().clone(),
        }),
        _ => None,
    }
}

fn check_certificates(pem: &str) -> Result<(), String> {
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        if certificate.is_err() {
            return Err("is not valid PEM".to_owned());
        }
        count += 1;
    }
    if count == 0 {
        return Err("must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(())
}

/// TLS settings with the config's CA (or the system's roots) and the
/// auth's client certificate.
#[cfg(any(feature = "nats", feature = "mqtt"))]
pub fn rustls_config(
    ca: Option<&str>,
    identity: Option<ClientIdentity>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(pem) => {
            for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let certificate = certificate.map_err(|_| "tls.ca_certificate: invalid PEM")?;
                roots
                    .add(certificate)
                    .map_err(|e| format!("tls.ca_certificate: {e}"))?;
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                // A system root rustls cannot use is skipped, as browsers do.
                let _ = roots.add(certificate);
            }
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.certificate.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "auth.certificate: invalid PEM")?;
            let key = PrivateKeyDer::from_pem_slice(identity.private_key.as_bytes())
                .map_err(|_| "auth.private_key: invalid PEM key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| "auth: the certificate and private key do not match".to_owned())
        }
    }
}
