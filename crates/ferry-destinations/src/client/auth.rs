//! The `auth` of the broker and database kinds: the types they share,
//! checked without I/O, and the user name and password a client logs in
//! with.

use ferry_core::FieldError;
use ferry_core::destination::Auth;

use crate::tls;

/// Whether a `basic` auth may leave its user name empty.
#[derive(Debug, Clone, Copy)]
pub enum UserName {
    Optional,
    /// Required; the message says so (and may say which name to use).
    Required(&'static str),
}

/// Checks an auth of the types every broker and database kind takes:
/// `none`, `basic` (its user name as `user` says) and `client_certificate`
/// (a PEM chain and private key). Any other type is refused, naming the
/// types `kind` accepts. A kind with more types checks those first.
pub fn check(auth: &Auth, kind: &str, user: UserName, accepted: &str) -> Vec<FieldError> {
    match auth {
        Auth::None => Vec::new(),
        Auth::Basic { username, .. } => match user {
            UserName::Required(message) if username.is_empty() => {
                vec![FieldError::new("auth.username", message)]
            }
            _ => Vec::new(),
        },
        Auth::ClientCertificate {
            certificate,
            private_key,
            ..
        } => tls::check_identity(certificate, private_key.expose()),
        other => vec![FieldError::new(
            "auth.type",
            format!(
                "`{}` is not supported by {kind} destinations (use {accepted})",
                other.type_name()
            ),
        )],
    }
}

/// The user name and password a broker client logs in with: `basic`'s, or
/// a `client_certificate`'s when it has both.
pub fn user_and_password(auth: &Auth) -> Option<(&str, &str)> {
    match auth {
        Auth::Basic { username, password } => Some((username, password.expose())),
        Auth::ClientCertificate {
            username: Some(username),
            password: Some(password),
            ..
        } => Some((username, password.expose())),
        _ => None,
    }
}
