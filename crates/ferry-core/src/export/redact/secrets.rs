//! Finding credentials in free text: what `redact_secrets` masks in every
//! text cell and every string inside JSON cells.
//!
//! It runs on every cell of exports of millions of rows, so it is built for
//! the common case of a cell that holds nothing: one case-insensitive
//! literal scan (and a digit count, for card numbers) decides whether any
//! rule could match, and only then do the rules run, each a regex compiled
//! once. A cell with nothing to mask is returned borrowed.
//!
//! A mask covers the whole secret (never "the last 4 digits"), and keeps
//! what is not secret around it (`Bearer `, `user:` in a URL, a key's name
//! and quotes), so that a reader still sees what was there. Masking twice
//! changes nothing more: `[REDACTED]` matches no rule that would change it.
//! The rules lean towards masking: a false positive costs a reader a word,
//! a false negative leaks a credential.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::REDACTED;

/// Whether a rule other than the card numbers' could match: a superset of
/// what each rule needs, as literals, so one scan rules most cells out.
static MAYBE: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"(?i)bearer|basic|://|private key|whsec_|fk_|[sr]k_(?:live|test)_|gh[pousr]_|github_pat_",
        r"|xox|glpat-|aiza|akia|asia|eyj|passw|passphrase|pwd|secret|token|api[_-]?key",
        r"|authorization|private[_-]?key|access[_-]?key|credential|cookie",
    ))
});

/// A PEM private key block; a block cut short (no END line) is masked to
/// the end of the text.
static PEM: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
    )
});

/// The password of a URL's userinfo (`scheme://user:password@host`), up to
/// the last `@` before the path, so that a password holding `@` is covered.
static URL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\[\]"'<>]*:)([^\s/?#"'<>]+)@"#));

/// Credentials recognizable by their shape alone, masked whole: Standard
/// Webhooks secrets, Ferry API keys, Stripe, GitHub, Slack and GitLab
/// tokens, Google API keys, AWS access key ids, JWTs.
static PREFIXED: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"\b(?:whsec_[A-Za-z0-9+/=]{8,}|fk_[A-Za-z0-9_-]{16,}|[sr]k_(?:live|test)_[A-Za-z0-9]{8,}",
        r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}",
        r"|glpat-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35}|(?:AKIA|ASIA)[A-Z0-9]{16}",
        r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
    ))
});

/// An AWS secret access key after its name, whatever stands between them
/// (`=`, `:`, quotes, or the spaces of a table).
static AWS_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"(?i)((?:aws.?)?secret.?access.?key["']?[ \t:=]*["']?)([A-Za-z0-9/+=]{40})"#)
});

/// `Bearer <token>` and `Basic <base64>`, in any case.
static SCHEME: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b(?:bearer|basic)[ \t]+([A-Za-z0-9._~+/-]+=*)"));

/// `key=value`, `key: value` and `"key": "value"` where the key names a
/// secret. The value is a quoted string (JSON's, JSON's inside JSON, or
/// single-quoted; cut short at the end of the text too) or a bare word; an
/// authorization scheme before it is kept.
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"(?i)([a-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|authorization",
        r"|private[_-]?key|access[_-]?key|credentials?|cookie)[a-z0-9_.-]*)",
        r#"((?:\\?["'])?[ \t]*[:=][ \t]*)((?:bearer|basic|token)[ \t]+)?"#,
        r#"(\\"(?:[^"\\]|\\[^"])*(?:\\")?|"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s"'\\,;&<>{}]+)"#,
    ))
});

/// A run of digits groups separated by single spaces or dashes, in which
/// card numbers are looked for.
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]+(?:[ -][0-9]+)*"));

/// Invariant: the patterns above are constants, checked by the tests.
fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid constant pattern")
}

/// Card numbers have 13 to 19 digits.
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;

/// `text` with everything that looks like a credential masked: bearer and
/// basic credentials, `whsec_` and `fk_` keys (and other well-known token
/// shapes), URL passwords, AWS access key ids and secret keys, values of
/// keys named like secrets (`password=…`, `"token": "…"`), card numbers
/// (13–19 digits, grouped by spaces or dashes, passing the Luhn check) and
/// PEM private keys. Borrowed when nothing was masked.
pub fn mask_secrets(text: &str) -> Cow<'_, str> {
    let rules = MAYBE.is_match(text);
    let cards = has_card_digits(text);
    if !rules && !cards {
        return Cow::Borrowed(text);
    }
    let mut text = Cow::Borrowed(text);
    if rules {
        text = then(text, mask_rules);
    }
    if cards {
        text = then(text, mask_cards);
    }
    text
}

/// Every rule, without the quick check that skips them: for the tests that
/// show the check skips nothing.
fn mask_rules(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    for rule in [
        mask_pem,
        mask_url_password,
        mask_prefixed,
        mask_aws_secret,
        mask_scheme,
        mask_key_value,
    ] {
        text = then(text, rule);
    }
    text
}

/// Applies `rule` to `text`, keeping it borrowed while nothing changes.
fn then<'a>(text: Cow<'a, str>, rule: fn(&str) -> Cow<'_, str>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(text) => rule(text),
        Cow::Owned(text) => match rule(&text) {
            Cow::Borrowed(_) => Cow::Owned(text),
            Cow::Owned(masked) => Cow::Owned(masked),
        },
    }
}

/// Replaces each match of `regex` for which `mask` gives a replacement;
/// borrowed when none does.
fn replace<'a>(
    text: &'a str,
    regex: &Regex,
    mut mask: impl FnMut(&Captures<'_>) -> Option<String>,
) -> Cow<'a, str> {
    let mut out = String::new();
    let (mut copied, mut changed) = (0, false);
    for caps in regex.captures_iter(text) {
        if let Some(replacement) = mask(&caps) {
            let whole = caps.get(0).map_or(0..0, |m| m.range());
            out.push_str(&text[copied..whole.start]);
            out.push_str(&replacement);
            copied = whole.end;
            changed = true;
        }
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn group<'t>(caps: &Captures<'t>, i: usize) -> &'t str {
    caps.get(i).map_or("", |m| m.as_str())
}

fn mask_pem(text: &str) -> Cow<'_, str> {
    replace(text, &PEM, |caps| {
        Some(format!("{}{REDACTED}{}", group(caps, 1), group(caps, 2)))
    })
}

fn mask_url_password(text: &str) -> Cow<'_, str> {
    replace(text, &URL_PASSWORD, |caps| {
        Some(format!("{}{REDACTED}@", group(caps, 1)))
    })
}

fn mask_prefixed(text: &str) -> Cow<'_, str> {
    replace(text, &PREFIXED, |caps| {
        let token = group(caps, 0);
        // `fk_` also starts database constraint names (`fk_orders_user`);
        // a key is random base64, which has digits or capitals.
        let name_like = token.starts_with("fk_")
            && !token[3..]
                .bytes()
                .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        (!name_like).then(|| REDACTED.to_owned())
    })
}

fn mask_aws_secret(text: &str) -> Cow<'_, str> {
    replace(text, &AWS_SECRET, |caps| {
        Some(format!("{}{REDACTED}", group(caps, 1)))
    })
}

fn mask_scheme(text: &str) -> Cow<'_, str> {
    replace(text, &SCHEME, |caps| {
        let (whole, token) = (group(caps, 0), group(caps, 1));
        // A sentence's full stop is not part of the token.
        let credential = token.trim_end_matches('.');
        if !looks_like_credential(credential) {
            return None;
        }
        let scheme = &whole[..whole.len() - token.len()];
        Some(format!("{scheme}{REDACTED}{}", &token[credential.len()..]))
    })
}

/// Whether the word after `Bearer`/`Basic` is a credential rather than
/// prose ("Basic setup", "bearer of"): long, or with digits, symbols or
/// capitals inside, as random tokens and base64 have.
fn looks_like_credential(token: &str) -> bool {
    token.len() >= 16
        || (token.len() >= 4
            && token.bytes().enumerate().any(|(i, b)| {
                b.is_ascii_digit() || b"-_~+/=".contains(&b) || (i > 0 && b.is_ascii_uppercase())
            }))
}

fn mask_key_value(text: &str) -> Cow<'_, str> {
    replace(text, &KEY_VALUE, |caps| {
        let value = group(caps, 4);
        let (open, close) = if value.starts_with("\\\"") {
            ("\\\"", "\\\"")
        } else if value.starts_with('"') {
            ("\"", "\"")
        } else if value.starts_with('\'') {
            ("'", "'")
        } else {
            ("", "")
        };
        // A quote the text cut short stays unclosed.
        let close = if value.len() > open.len() && value.ends_with(close) {
            close
        } else {
            ""
        };
        Some(format!(
            "{}{}{}{open}{REDACTED}{close}",
            group(caps, 1),
            group(caps, 2),
            group(caps, 3)
        ))
    })
}

fn has_card_digits(text: &str) -> bool {
    text.bytes().filter(u8::is_ascii_digit).count() >= *CARD_DIGITS.start()
}

/// Masks card numbers: within each run of digit groups, every span of whole
/// groups that holds 13–19 digits, starts like a card (2–9) and passes the
/// Luhn check; a span of several groups must be grouped as cards are (one
/// kind of separator, a first group of 4 digits, groups of 3 to 6: `4-4-4-4`,
/// `4-6-5`), which keeps dates and UUIDs out. A run of digits glued together
/// longer than 19 is an id, not a card.
fn mask_cards(text: &str) -> Cow<'_, str> {
    replace(text, &DIGIT_RUN, |caps| mask_card_run(group(caps, 0)))
}

fn mask_card_run(run: &str) -> Option<String> {
    let digits = run.bytes().filter(u8::is_ascii_digit).count();
    if digits < *CARD_DIGITS.start() {
        return None;
    }
    // Each group's byte range; groups are separated by exactly one byte.
    let mut groups = Vec::new();
    let mut start = 0;
    for (i, b) in run.bytes().enumerate() {
        if !b.is_ascii_digit() {
            groups.push(start..i);
            start = i + 1;
        }
    }
    groups.push(start..run.len());
    let bytes = run.as_bytes();

    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, first) in groups.iter().enumerate() {
        if !(b'2'..=b'9').contains(&bytes[first.start]) {
            continue;
        }
        let separator = (i + 1 < groups.len()).then(|| bytes[first.end]);
        let mut count = 0;
        for (j, last) in groups.iter().enumerate().skip(i) {
            if j > i
                && (Some(bytes[last.start - 1]) != separator
                    || first.len() != 4
                    || !(3..=6).contains(&last.len()))
            {
                break;
            }
            count += last.len();
            if count > *CARD_DIGITS.end() {
                break;
            }
            if CARD_DIGITS.contains(&count) && luhn(&run[first.start..last.end]) {
                match spans.last_mut() {
                    Some(span) if span.end >= first.start => span.end = span.end.max(last.end),
                    _ => spans.push(first.start..last.end),
                }
            }
        }
    }
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(run.len());
    let mut copied = 0;
    for span in spans {
        out.push_str(&run[copied..span.start]);
        out.push_str(REDACTED);
        copied = span.end;
    }
    out.push_str(&run[copied..]);
    Some(out)
}

/// The Luhn check over the digits of `text` (other characters skipped).
fn luhn(text: &str) -> bool {
    let mut sum = 0;
    for (i, d) in text
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        sum += if i % 2 == 1 {
            let double = d * 2;
            if double > 9 { double - 9 } else { double }
        } else {
            d
        };
    }
    sum % 10 == 0
}

/// Whether a number is a card number written as a JSON or integer cell.
pub(super) fn is_card_number(n: u64) -> bool {
    if n < 10u64.pow(*CARD_DIGITS.start() as u32 - 1) {
        return false;
    }
    let digits = n.to_string();
    CARD_DIGITS.contains(&digits.len()) && digits.as_bytes()[0] >= b'2' && luhn(&digits)
}

#[cfg(test)]
mod tests;
