//! How a command ends: a usage mistake exits 2, anything else that went wrong
//! (the API refused, a check failed, the server was unreachable) exits 1, and
//! stdout is written without failing on a closed pipe.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

use crate::api::ApiError;

/// A mistake in how the command was invoked: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for an `anyhow` error carrying a [`UsageError`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Prints `error: …` on stderr; exit code 2 for usage mistakes, else 1.
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    if let Some(u) = e.downcast_ref::<UsageError>() {
        eprintln!("error: {u}");
        return ExitCode::from(2);
    }
    if let Some(api) = e.downcast_ref::<ApiError>() {
        // The API's message is the useful part; the context is what we tried.
        let context = e
            .chain()
            .next()
            .filter(|c| c.downcast_ref::<ApiError>().is_none());
        match context {
            Some(ctx) => eprintln!("error: {ctx}: {api}"),
            None => eprintln!("error: {api}"),
        }
        return ExitCode::FAILURE;
    }
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

/// Writes to stdout, ignoring a closed pipe (`ferry deliveries list | head`).
pub fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_api_errors_exit_1() {
        assert_eq!(report_error(&usage("bad")), ExitCode::from(2));
        let api = ApiError::from_response(
            reqwest::StatusCode::NOT_FOUND,
            &reqwest::header::HeaderMap::new(),
            br#"{"error":"not_found","message":"No such event."}"#,
        );
        assert_eq!(report_error(&api.into()), ExitCode::FAILURE);
    }
}
