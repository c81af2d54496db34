//! Finding credentials in free text: what `redact_secrets` masks in every
//! text cell and every string inside JSON cells.
//!
//! It runs on every cell of exports of millions of rows, so it is built for
//! the common case of a cell that holds nothing: one case-insensitive
//! literal scan (and a digit count, for card numbers) tells which rules
//! could match, and only those run, each a regex compiled once. A cell with
//! nothing to mask is returned borrowed.
//!
//! A mask covers the whole secret (never "the last 4 digits"), and keeps
//! what is not secret around it (`Bearer `, `user:` in a URL, a key's name
//! and quotes), so that a reader still sees what was there. Masking twice
//! changes nothing more: `[REDACTED]` matches no rule that would change it.
//! The rules lean towards masking: a false positive costs a reader a word,
//! a false negative leaks a credential.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex::{Captures, Regex};

use super::REDACTED;

/// The rules, each a bit in the set of those a text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Pem = 1 << 0,
    UrlPassword = 1 << 1,
    Prefixed = 1 << 2,
    AwsSecret = 1 << 3,
    Scheme = 1 << 4,
    KeyValue = 1 << 5,
}

/// The literals without which a rule cannot match (compared ignoring ASCII
/// case), and the rules each one calls for. One scan of a text for all of
/// them says which rules to run, and for most cells that none need to.
const TRIGGERS: &[(&str, u8)] = &[
    ("private key", Rule::Pem as u8),
    ("://", Rule::UrlPassword as u8),
    ("whsec_", Rule::Prefixed as u8),
    ("fk_", Rule::Prefixed as u8),
    ("k_live_", Rule::Prefixed as u8),
    ("k_test_", Rule::Prefixed as u8),
    ("ghp_", Rule::Prefixed as u8),
    ("gho_", Rule::Prefixed as u8),
    ("ghu_", Rule::Prefixed as u8),
    ("ghs_", Rule::Prefixed as u8),
    ("ghr_", Rule::Prefixed as u8),
    ("github_pat_", Rule::Prefixed as u8),
    ("xox", Rule::Prefixed as u8),
    ("glpat-", Rule::Prefixed as u8),
    ("aiza", Rule::Prefixed as u8),
    ("akia", Rule::Prefixed as u8),
    ("asia", Rule::Prefixed as u8),
    ("eyj", Rule::Prefixed as u8),
    ("secret", Rule::AwsSecret as u8 | Rule::KeyValue as u8),
    ("bearer", Rule::Scheme as u8),
    ("basic", Rule::Scheme as u8),
    ("password", Rule::KeyValue as u8),
    ("passwd", Rule::KeyValue as u8),
    ("passphrase", Rule::KeyValue as u8),
    ("pwd", Rule::KeyValue as u8),
    ("token", Rule::KeyValue as u8),
    ("apikey", Rule::KeyValue as u8),
    ("api_key", Rule::KeyValue as u8),
    ("api-key", Rule::KeyValue as u8),
    ("authorization", Rule::KeyValue as u8),
    ("privatekey", Rule::KeyValue as u8),
    ("private_key", Rule::KeyValue as u8),
    ("private-key", Rule::KeyValue as u8),
    ("accesskey", Rule::KeyValue as u8),
    ("access_key", Rule::KeyValue as u8),
    ("access-key", Rule::KeyValue as u8),
    ("credential", Rule::KeyValue as u8),
    ("cookie", Rule::KeyValue as u8),
];

static TRIGGER_SCAN: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .ascii_case_insensitive(true)
        .build(TRIGGERS.iter().map(|(literal, _)| literal))
        // Invariant: a few short constant literals, checked by the tests.
        .expect("the trigger literals build")
});

/// The rules that could match `text`.
fn rules_for(text: &str) -> u8 {
    let mut rules = 0;
    // Overlapping, so that no literal hides another (`secretaccess`).
    for found in TRIGGER_SCAN.find_overlapping_iter(text) {
        rules |= TRIGGERS[found.pattern().as_usize()].1;
    }
    rules
}

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
    regex(r#"(?i)((?:aws.?)?secret.?access.?key["']?[ \t:=]*["']?)([A-Za-z0-9/+=]{40,})"#)
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
    let rules = rules_for(text);
    let cards = has_card_digits(text);
    if rules == 0 && !cards {
        return Cow::Borrowed(text);
    }
    let mut text = Cow::Borrowed(text);
    for (rule, step) in STEPS {
        if rules & rule as u8 != 0 {
            text = then(text, step);
        }
    }
    if cards {
        text = then(text, mask_cards);
    }
    text
}

/// One rule: `text` with what it matches masked, borrowed if nothing.
type Step = for<'a> fn(&'a str) -> Cow<'a, str>;

/// The rules in the order they run: whole blocks and URLs first, then
/// tokens recognizable by shape, then what is recognized by what stands
/// before it (an AWS key's name, an authorization scheme, a key), so that
/// a key-value mask never hides a token from the rule that knows it.
const STEPS: [(Rule, Step); 6] = [
    (Rule::Pem, mask_pem),
    (Rule::UrlPassword, mask_url_password),
    (Rule::Prefixed, mask_prefixed),
    (Rule::AwsSecret, mask_aws_secret),
    (Rule::Scheme, mask_scheme),
    (Rule::KeyValue, mask_key_value),
];

/// Applies `rule` to `text`, keeping it borrowed while nothing changes.
fn then<'a>(text: Cow<'a, str>, rule: Step) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(text) => rule(text),
        Cow::Owned(text) => match rule(&text) {
            Cow::Borrowed(_) => Cow::Owned(text),
            Cow::Owned(masked) => Cow::Owned(masked),
        },
    }
}

/// What becomes of one match of a rule.
enum Found {
    /// It is replaced by this text.
    Mask(String),
    /// It stays; the search goes on after it.
    Keep,
    /// It stays, and the search goes on from this byte offset inside it,
    /// where a match may start that this one overlapped
    /// (`Bearer Bearer <token>`).
    KeepFrom(usize),
}

/// Replaces each match of `regex` for which `mask` gives a replacement;
/// borrowed when none does.
fn replace<'a>(
    text: &'a str,
    regex: &Regex,
    mut mask: impl FnMut(&Captures<'_>) -> Option<String>,
) -> Cow<'a, str> {
    replace_found(text, regex, |caps| {
        mask(caps).map_or(Found::Keep, Found::Mask)
    })
}

/// [`replace`], where a match that stays may be searched again from inside.
fn replace_found<'a>(
    text: &'a str,
    regex: &Regex,
    mut mask: impl FnMut(&Captures<'_>) -> Found,
) -> Cow<'a, str> {
    let mut out = String::new();
    let (mut copied, mut changed, mut at) = (0, false, 0);
    while at <= text.len() {
        let Some(caps) = regex.captures_at(text, at) else {
            break;
        };
        let whole = caps.get(0).map_or(at..at, |m| m.range());
        match mask(&caps) {
            Found::Mask(replacement) => {
                out.push_str(&text[copied..whole.start]);
                out.push_str(&replacement);
                copied = whole.end;
                changed = true;
                at = whole.end;
            }
            Found::Keep => at = whole.end,
            Found::KeepFrom(from) => at = from,
        }
        // Never search the same place twice (an empty match).
        if at <= whole.start {
            at = whole.start + text[whole.start..].chars().next().map_or(1, char::len_utf8);
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
    replace_found(text, &SCHEME, |caps| {
        let (whole, token) = (group(caps, 0), group(caps, 1));
        // A sentence's full stop is not part of the token.
        let credential = token.trim_end_matches('.');
        if !looks_like_credential(credential) {
            // The word may be a scheme itself: `Bearer Bearer <token>`.
            return caps
                .get(1)
                .map_or(Found::Keep, |m| Found::KeepFrom(m.start()));
        }
        let scheme = &whole[..whole.len() - token.len()];
        Found::Mask(format!("{scheme}{REDACTED}{}", &token[credential.len()..]))
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

/// Whether `text` has a run of at least 13 digits, in groups separated by
/// single spaces or dashes: what a card number needs. A byte scan, so that
/// the many cells with a date or a few numbers skip the card rule.
fn has_card_digits(text: &str) -> bool {
    let (mut run, mut after_separator) = (0, false);
    for b in text.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            after_separator = false;
            if run >= *CARD_DIGITS.start() {
                return true;
            }
        } else if (b == b' ' || b == b'-') && run > 0 && !after_separator {
            after_separator = true;
        } else {
            run = 0;
            after_separator = false;
        }
    }
    false
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
