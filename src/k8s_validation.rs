//! Kubernetes' own rules for names, label and annotation keys and values, and Ingress hosts: the
//! checks the API server applies (k8s.io/apimachinery `util/validation`), so that plane refuses
//! what the server would refuse before anything is sent. Each returns why a text breaks the rule.

use std::net::IpAddr;

/// Longest DNS-1123 subdomain (most object names, label and annotation key prefixes, hosts).
pub const SUBDOMAIN_MAX: usize = 253;
/// Longest DNS-1123 or DNS-1035 label (Namespace and Service names), label value or key name.
pub const LABEL_MAX: usize = 63;
/// Most bytes all of an object's annotations (keys and values) may take together.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// A DNS-1123 label: at most 63 lower-case letters, digits and `-`, starting and ending with a
/// letter or digit (Namespace names, and a namespace an object names).
pub fn dns1123_label(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.len() > LABEL_MAX {
        return Err(format!(
            "it is {} characters long, more than {LABEL_MAX}",
            text.len()
        ));
    }
    label_chars(text, "", "lower-case letters, digits and `-`")
}

/// The longest release or namespace name plane takes: as Helm's, ten short of a label's 63, so
/// that the names a bundle derives from it (`{release}-worker`) still fit in a label value.
pub const NAME_MAX: usize = 53;

/// A release name, or a namespace plane acts in (`-n`, `--state-namespace`): both become label
/// values and object names, so a DNS-1123 label of at most [`NAME_MAX`] characters. The one check
/// every command's `--release`, `-n` and `--state-namespace` pass, before any request.
///
/// # Errors
/// Why the name breaks the rule.
pub fn plane_name(text: &str) -> Result<String, String> {
    if text.len() > NAME_MAX {
        return Err(format!(
            "it is {} characters long, more than {NAME_MAX} (release and namespace names become \
             label values, and the names derived from them must fit in 63)",
            text.len()
        ));
    }
    dns1123_label(text)
        .map(|()| text.to_owned())
        .map_err(|why| format!("not a DNS-1123 label: {why}"))
}

/// A label selector as `kubectl -l` and the API server take it: requirements joined by commas,
/// each `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)` or
/// `key notin (a,b)`, with qualified-name keys and label values.
///
/// # Errors
/// The requirement that breaks the rule, and why.
pub fn label_selector(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("it is empty".into());
    }
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("a `)` closes nothing".into());
        }
    }
    if depth != 0 {
        return Err("a `(` is not closed".into());
    }
    parts.push(&text[start..]);
    for part in parts {
        let part = part.trim();
        let requirement = |why: String| format!("`{part}`: {why}");
        let set = |rest: &str| -> Result<(), String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| requirement("a set is written (a,b)".into()))?;
            for value in inner.split(',') {
                label_value(value.trim()).map_err(&requirement)?;
            }
            Ok(())
        };
        if let Some(key) = part.strip_prefix('!') {
            qualified_name(key.trim()).map_err(&requirement)?;
        } else if let Some((key, value)) = part.split_once("!=") {
            qualified_name(key.trim()).map_err(&requirement)?;
            label_value(value.trim()).map_err(&requirement)?;
        } else if let Some((key, value)) = part.split_once('=') {
            qualified_name(key.trim()).map_err(&requirement)?;
            label_value(value.trim_start_matches('=').trim()).map_err(&requirement)?;
        } else if let Some((key, rest)) = part.split_once(" notin ") {
            qualified_name(key.trim()).map_err(&requirement)?;
            set(rest)?;
        } else if let Some((key, rest)) = part.split_once(" in ") {
            qualified_name(key.trim()).map_err(&requirement)?;
            set(rest)?;
        } else {
            qualified_name(part).map_err(&requirement)?;
        }
    }
    Ok(())
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter (Service names).
pub fn dns1035_label(text: &str) -> Result<(), String> {
    dns1123_label(text)?;
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("it must start with a lower-case letter".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated labels of lower-case letters,
/// digits and `-`, each starting and ending with a letter or digit (most object names).
pub fn dns1123_subdomain(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.len() > SUBDOMAIN_MAX {
        return Err(format!(
            "it is {} characters long, more than {SUBDOMAIN_MAX}",
            text.len()
        ));
    }
    for label in text.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (`..`, or a dot at the start or end)".into());
        }
        label_chars(
            label,
            "each dot-separated part ",
            "lower-case letters, digits, `-` and `.`",
        )?;
    }
    Ok(())
}

/// The characters of one DNS label: `[a-z0-9-]`, a letter or digit at both ends.
fn label_chars(label: &str, what: &str, allowed: &str) -> Result<(), String> {
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("`{bad}` is not allowed: only {allowed}"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!(
            "{what}must start and end with a letter or digit (`{label}` does not)"
        ));
    }
    Ok(())
}

/// A role or binding name (RBAC): any path segment, so not `.` or `..` and no `/` or `%`.
pub fn path_segment(text: &str) -> Result<(), String> {
    match text {
        "" => Err("it is empty".into()),
        "." | ".." => Err(format!("`{text}` is not allowed")),
        _ if text.contains('/') || text.contains('%') => {
            Err("it must not contain `/` or `%`".into())
        }
        _ => Ok(()),
    }
}

/// One rule: `Err(why)` when a text breaks it.
pub type Rule = fn(&str) -> Result<(), String>;

/// The name rule the API server applies to objects of `kind`, and its name.
pub fn name_rule(kind: &str) -> (Rule, &'static str) {
    match kind {
        "Namespace" => (dns1123_label, "a DNS-1123 label"),
        "Service" => (dns1035_label, "a DNS-1035 label"),
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            (path_segment, "a path segment")
        }
        _ => (dns1123_subdomain, "a DNS-1123 subdomain"),
    }
}

/// A label or annotation key: an optional DNS-1123 subdomain prefix and `/`, then a name of at
/// most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix).map_err(|why| format!("its prefix `{prefix}`: {why}"))?;
    }
    if name.is_empty() {
        return Err("its name part is empty".into());
    }
    label_value(name).map_err(|why| {
        if prefix.is_some() {
            format!("its name `{name}`: {why}")
        } else {
            why
        }
    })
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_` and `.`, starting and ending with
/// a letter or digit.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.len() > LABEL_MAX {
        return Err(format!(
            "it is {} characters long, more than {LABEL_MAX}",
            value.len()
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{bad}` is not allowed: only letters, digits, `-`, `_` and `.`"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let edges_ok = value.is_empty() || (edge(value.chars().next()) && edge(value.chars().last()));
    if !edges_ok {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

/// An Ingress host: a DNS-1123 subdomain, not an IP address, with `*.` allowed only as the whole
/// first label.
pub fn ingress_host(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Err("it must be a DNS name, not an IP address".into());
    }
    match host.strip_prefix("*.") {
        Some(rest) => {
            if rest.contains('*') {
                return Err("a wildcard `*.` may only be the first label".into());
            }
            dns1123_subdomain(rest)
        }
        None if host.contains('*') => Err("a wildcard `*.` may only be the first label".into()),
        None => dns1123_subdomain(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_api_servers_rules() {
        assert!(dns1123_subdomain("widgets.example.com").is_ok());
        assert!(
            dns1123_subdomain("a..io")
                .unwrap_err()
                .contains("empty label")
        );
        assert!(
            dns1123_subdomain("-bad-.io")
                .unwrap_err()
                .contains("`-bad-`")
        );
        assert!(dns1123_subdomain("My_App").unwrap_err().contains("`M`"));
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("widget-system").is_ok());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1035_label("9lives").is_err());
        assert!(dns1035_label("grafana").is_ok());
        assert!(path_segment("system:operator").is_ok());
        assert!(path_segment("a/b").is_err());
        assert_eq!(name_rule("Service").1, "a DNS-1035 label");
    }

    #[test]
    fn release_and_namespace_names_are_dns_labels() {
        assert!(plane_name("shop-api").is_ok());
        for bad in ["", "Upper", "-x", "x-", "a_b", &"x".repeat(54)] {
            assert!(plane_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_selectors() {
        for good in [
            "app.kubernetes.io/name=widget-operator",
            "a=b,c!=d",
            "tier in (front, back),!legacy",
            "env notin (dev),team",
            "a==b",
        ] {
            assert!(label_selector(good).is_ok(), "{good}");
        }
        for bad in ["", "a=b,,c", "a in (x", "a in x", "=b", "a=b c", "a)"] {
            assert!(label_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_keys_and_values() {
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("Release_1.x").is_ok());
        assert!(
            qualified_name("Bad.Prefix/x")
                .unwrap_err()
                .contains("prefix")
        );
        assert!(qualified_name("a/").unwrap_err().contains("empty"));
        assert!(qualified_name("-x").is_err());
        assert!(qualified_name(&"a".repeat(64)).is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.7.1").is_ok());
        assert!(label_value("-bad-").is_err());
        assert!(label_value("a b").is_err());
        assert!(label_value(&"a".repeat(64)).is_err());
    }

    #[test]
    fn ingress_hosts() {
        assert!(ingress_host("app.example.com").is_ok());
        assert!(ingress_host("*.example.com").is_ok());
        assert!(ingress_host("10.0.0.1").unwrap_err().contains("not an IP"));
        assert!(ingress_host("::1").unwrap_err().contains("not an IP"));
        assert!(ingress_host("a.*.com").unwrap_err().contains("first label"));
        assert!(ingress_host("*.*.com").unwrap_err().contains("first label"));
        assert!(ingress_host("x.io:8443").is_err());
    }
}
