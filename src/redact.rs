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

use base64::Engine as _;

/// What a secret is shown as.
pub const MASK: &str = "***";

/// The secret values of this run, longest first (so that a secret containing another is masked
/// whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret of this run: from now on it is masked wherever it would be
/// shown, as it is and as the formats plane writes spell it (JSON and YAML escapes, YAML's
/// single quotes, each line of a block, base64). Empty values are ignored.
pub fn register(value: &str) {
    let value = value.trim_matches(|c: char| c == '\n' || c == '\r');
    if value.is_empty() {
        return;
    }
    let mut forms: Vec<String> = vec![value.to_owned()];
    // JSON and YAML's double quotes escape `"`, `\` and control characters alike.
    let quoted = serde_json::to_string(value).unwrap_or_default();
    forms.push(quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned());
    forms.push(value.replace('\'', "''"));
    forms.extend(
        value
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned),
    );
    forms.push(base64::engine::general_purpose::STANDARD.encode(value));
    adopt(forms);
}

/// Every form of every secret registered so far, to hand to another process of this run.
pub fn registered() -> Vec<String> {
    SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Takes `forms` as they are: those [`registered`] gave in another process of this run, or
/// those [`register`] derived.
pub fn adopt(forms: Vec<String>) {
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for form in forms {
        if !form.is_empty() && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
}

/// Registers the credentials of the URL `text` (its user info, and the password alone). What
/// precedes the last `@` of the URL counts, even where a `/` in an unencoded password makes it
/// no URL at all.
pub fn register_url_credentials(text: &str) {
    let Some(start) = text.find("://").map(|at| at + 3) else {
        return;
    };
    let end = text[start..]
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
        .map_or(text.len(), |end| start + end);
    if let Some(at) = text[start..end].rfind('@') {
        let userinfo = &text[start..start + at];
        // A `/` before the `@` is a path (`https://host/a@b`) unless a `user:` comes first.
        if let Some(slash) = userinfo.find('/')
            && !userinfo[..slash].contains(':')
        {
            return;
        }
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
    fn escaped_and_split_forms_of_a_secret_are_masked() {
        register("redact-test \"quoted\"\tand\nsecond-line-redact");
        let json =
            serde_json::to_string("redact-test \"quoted\"\tand\nsecond-line-redact").unwrap();
        assert_eq!(mask(&json), "\"***\"");
        assert_eq!(mask("  second-line-redact\n"), "  ***\n");
        register("it's redact-yaml");
        assert_eq!(mask("'it''s redact-yaml'"), "'***'");
        register("redact-b64-value");
        let encoded = base64::engine::general_purpose::STANDARD.encode("redact-b64-value");
        assert_eq!(mask(&encoded), "***");
        register_url_credentials("https://bob:pa/redact-slash-9@h.example");
        assert_eq!(mask("pa/redact-slash-9"), "***");
    }

    #[test]
    fn url_credentials_are_masked_without_registration() {
        assert_eq!(
            mask("\"https://bob:pw@app.example.com/x?q=1\": bad"),
            "\"https://***@app.example.com/x?q=1\": bad"
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
