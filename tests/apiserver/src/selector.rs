//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!` not exists) and field selectors
//! (`metadata.name`, `metadata.namespace`, and any other dotted path, compared as a string).

use crate::error::ApiError;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

/// A parsed label selector; every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, Op)>);

/// Splits on commas outside parentheses.
fn split_requirements(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect()
}

fn invalid(req: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: found '{req}', expected: in, notin, =, ==, !=, gt, lt"
    ))
}

fn parse_set(rest: &str, req: &str) -> Result<Vec<String>, ApiError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid(req))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for req in split_requirements(s) {
            if let Some(key) = req.strip_prefix('!') {
                reqs.push((key.trim().to_owned(), Op::NotExists));
                continue;
            }
            let end = req
                .find(|c: char| c.is_whitespace() || c == '=' || c == '!' || c == '(')
                .unwrap_or(req.len());
            let (key, rest) = (req[..end].to_owned(), req[end..].trim_start());
            if key.is_empty() {
                return Err(invalid(req));
            }
            let op = if rest.is_empty() {
                Op::Exists
            } else if let Some(v) = rest.strip_prefix("!=") {
                Op::NotEq(v.trim().to_owned())
            } else if let Some(v) = rest.strip_prefix("==") {
                Op::Eq(v.trim().to_owned())
            } else if let Some(v) = rest.strip_prefix('=') {
                Op::Eq(v.trim().to_owned())
            } else if let Some(v) = rest.strip_prefix("notin") {
                Op::NotIn(parse_set(v, req)?)
            } else if let Some(v) = rest.strip_prefix("in") {
                Op::In(parse_set(v, req)?)
            } else {
                return Err(invalid(req));
            };
            reqs.push((key, op));
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.0.iter().all(|(key, op)| {
            let v = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
            match op {
                Op::Eq(want) => v == Some(want.as_str()),
                Op::NotEq(want) => v != Some(want.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
            }
        })
    }
}

/// A parsed field selector: (dotted path, equal?, value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(Vec<String>, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for req in s.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (path, eq, value) = if let Some((k, v)) = req.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = req.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = req.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{req}'"
                )));
            };
            reqs.push((
                path.trim().split('.').map(str::to_owned).collect(),
                eq,
                value.trim().to_owned(),
            ));
        }
        Ok(Self(reqs))
    }

    /// The `metadata.name` this selector pins, if any (lets watches skip other objects cheaply).
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, eq, _)| *eq && p.len() == 2 && p[0] == "metadata" && p[1] == "name")
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let got = path.iter().try_fold(obj, |v, k| v.get(k));
            let got = match got {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_operators() {
        let l = json!({"app": "web", "tier": "front"});
        let yes = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&l));
        assert!(yes("app=web"));
        assert!(yes("app==web,tier"));
        assert!(yes("app!=db"));
        assert!(yes("app in (web, db),tier notin (back)"));
        assert!(yes("!missing"));
        assert!(!yes("missing"));
        assert!(!yes("app notin (web)"));
        assert!(!yes("app=db"));
        assert!(yes(""));
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn field_selector_paths() {
        let o =
            json!({"metadata": {"name": "a", "namespace": "n"}, "status": {"phase": "Running"}});
        let yes = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(yes("metadata.name=a"));
        assert!(yes("metadata.namespace==n,metadata.name!=b"));
        assert!(yes("status.phase=Running"));
        assert!(!yes("metadata.name=b"));
        assert_eq!(
            FieldSelector::parse("metadata.name=a").unwrap().name(),
            Some("a")
        );
    }
}
