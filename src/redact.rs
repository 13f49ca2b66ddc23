//! What plane never shows: the values of secret inputs and the credentials of URLs, masked in
//! every text that leaves the process (stdout, stderr, progress, errors, the release record).
//!
//! Secret values are learnt where the values are layered (whichever source gave them: the
//! environment, a profile, `-f`, `--set`) and registered here once; the terminal gateway
//! (`ui`) and [`Problem`](crate::error::Problem)'s rendering pass every text through [`mask`],
//! so no call site has to remember. Credentials in a URL (`scheme://user:password@host`) are
//! masked whether or not anyone registered them.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is shown as.
pub const MASK: &str = "***";

/// The secret values of this run, longest first (so that a secret containing another is masked
/// whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret of this run: from now on it is masked wherever it would be
/// shown. Empty values are ignored.
pub fn register(value: &str) {
    let value = value.trim_matches(|c: char| c == '\n' || c == '\r');
    if value.is_empty() {
        return;
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if secrets.iter().any(|s| s == value) {
        return;
    }
    secrets.push(value.to_owned());
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
}

/// Registers the credentials of every URL in `text` (the user name and the password each, so
/// that either is masked wherever it appears alone).
pub fn register_url_credentials(text: &str) {
    for (start, end) in userinfo_spans(text) {
        let userinfo = &text[start..end];
        register(userinfo);
        // A user name alone is often a common word: it is masked inside URLs only, where the
        // whole user info is. The password is masked everywhere.
        if let Some((_, password)) = userinfo.split_once(':') {
            register(password);
        }
    }
}

/// `text` with every registered secret and every URL's credentials replaced by [`MASK`].
pub fn mask(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    drop(secrets);
    let spans = userinfo_spans(&out);
    if spans.is_empty() {
        return out;
    }
    let mut masked = String::with_capacity(out.len());
    let mut at = 0;
    for (start, end) in spans {
        masked.push_str(&out[at..start]);
        masked.push_str(MASK);
        at = end;
    }
    masked.push_str(&out[at..]);
    Cow::Owned(masked)
}

/// Whether `text` holds a registered secret or a URL's credentials.
pub fn holds_secret(text: &str) -> bool {
    matches!(mask(text), Cow::Owned(_))
}

/// The byte ranges of the user info (`user:password` before `@`) of every URL in `text`.
fn userinfo_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        // The authority ends at the path, query or fragment, or where the text around the URL
        // resumes (space, quote, bracket, comma).
        let authority_end = text[start..]
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>' | ',' | ')' | ']'
                ) || c.is_whitespace()
            })
            .map_or(text.len(), |end| start + end);
        if let Some(at) = text[start..authority_end].rfind('@') {
            let end = start + at;
            if end > start && &text[start..end] != MASK {
                spans.push((start, end));
            }
        }
        from = authority_end.max(start);
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_masked_without_registration() {
        assert_eq!(
            mask("\"https://bob:pw@ray.example.com/x?q=1\": bad"),
            "\"https://***@ray.example.com/x?q=1\": bad"
        );
        assert_eq!(
            mask("https://token@h and http://h2/a@b"),
            "https://***@h and http://h2/a@b"
        );
        assert_eq!(mask("no url here @ all"), "no url here @ all");
        assert_eq!(mask("s3://***@bucket"), "s3://***@bucket");
    }

    #[test]
    fn registered_values_are_masked_longest_first() {
        register("redact-test-secret-value");
        register("redact-test-secret");
        register("");
        assert_eq!(
            mask("a redact-test-secret-value and redact-test-secret."),
            "a *** and ***."
        );
        assert!(holds_secret("x redact-test-secret"));
        assert!(!holds_secret("nothing to hide"));
    }

    #[test]
    fn a_password_alone_is_masked_once_its_url_was_seen() {
        register_url_credentials("https://alice:redact-test-pw-42@h.example");
        assert_eq!(mask("pw is redact-test-pw-42"), "pw is ***");
    }
}
