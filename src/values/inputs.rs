//! Declared environment inputs: typed, validated, and fed into the values at their path.

use serde::Deserialize;
use serde_json::Value;

use super::{Origin, Values, ValuesPath, kind_of};
use crate::error::Problem;

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    Url,
    String,
    Int,
    Bool,
    /// A string that is never shown in output, errors or logs.
    Secret,
}

/// Values computed in Rust from a URL input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    /// Values path that receives the URL's host.
    pub host: Option<String>,
}

/// One input as declared in addon.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    #[serde(rename = "type")]
    pub kind: InputType,
    /// The values path the input feeds.
    pub path: String,
    #[serde(default)]
    pub required: bool,
    pub default: Option<serde_yaml_ng::Value>,
    /// For `url`: the scheme the URL must use.
    pub scheme: Option<String>,
    #[serde(default)]
    pub derive: Derive,
    #[serde(default)]
    pub description: String,
}

/// A value plane computes from an input, set after the values passed their schema.
#[derive(Debug, Clone)]
pub struct Derived {
    pub path: ValuesPath,
    pub value: Value,
    pub origin: Origin,
}

/// Where inputs are read: the process's environment under each input's name, or under the names an
/// engine gives them (Argo CD's `ARGOCD_ENV_<NAME>`).
pub trait Environment {
    /// The value of input `var`, if it is set.
    fn get(&self, var: &str) -> Option<String>;
    /// How to tell a user to set input `var`.
    fn name(&self, var: &str) -> String {
        var.to_owned()
    }
}

impl<F: Fn(&str) -> Option<String>> Environment for F {
    fn get(&self, var: &str) -> Option<String> {
        self(var)
    }
}

/// Feeds the real environment (layer 5, which beats every other layer) into `values`, fills in
/// input defaults, and checks every input's final value whatever layer it came from. Returns every
/// problem found and the values to derive from the inputs.
pub fn apply_inputs(
    values: &mut Values,
    inputs: &[(String, InputSpec)],
    env: &dyn Environment,
) -> (Vec<Problem>, Vec<Derived>) {
    let mut problems = Vec::new();
    let mut derived = Vec::new();
    for (var, spec) in inputs {
        let path = match ValuesPath::parse(&spec.path) {
            Ok(path) => path,
            Err(why) => {
                problems.push(
                    Problem::new(format!("input {var} has a malformed values path")).because(why),
                );
                continue;
            }
        };
        if let Some(raw) = env.get(var) {
            match typed(spec.kind, &raw) {
                Ok(value) => {
                    if let Err(why) = values.set(&path, value, &Origin::Env { var: var.clone() }) {
                        problems.push(Problem::new(format!("cannot use {var}")).because(why));
                    }
                }
                Err(why) => problems.push(
                    Problem::new(format!("{var} is not a valid {}", type_name(spec.kind)))
                        .at(Origin::Env { var: var.clone() }.to_string())
                        .because(why_with_value(spec.kind, &raw, &why)),
                ),
            }
        }
        let present = values
            .get(&path)
            .is_some_and(|v| !v.is_null() && v != &Value::String(String::new()));
        if !present {
            if let Some(default) = &spec.default {
                let default = serde_json::to_value(default).unwrap_or(Value::Null);
                let _ = values.set(&path, default, &Origin::InputDefault { var: var.clone() });
            } else if spec.required {
                let name = env.name(var);
                problems.push(
                    Problem::new(format!("{name} is required"))
                        .at(format!("input {var} (values path {path})"))
                        .because(spec.description.clone())
                        .hint(format!(
                            "pick a profile with --profile (see `plane profiles`), or export {name}{}",
                            example(spec)
                        )),
                );
                continue;
            } else {
                continue;
            }
        }
        match check(values, var, spec, &path) {
            Ok(more) => derived.extend(more),
            Err(problem) => problems.push(problem),
        }
    }
    (problems, derived)
}

/// Converts an environment string to the input's type.
fn typed(kind: InputType, raw: &str) -> Result<Value, String> {
    match kind {
        InputType::Url | InputType::String | InputType::Secret => {
            if raw.is_empty() {
                Err("it is set but empty (unset it to use the profile's value)".into())
            } else {
                Ok(Value::String(raw.to_owned()))
            }
        }
        InputType::Int => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "expected a whole number".into()),
        InputType::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err("expected true or false".into()),
        },
    }
}

/// Checks the final value of an input, whatever layer it came from, and says what derives from it.
fn check(
    values: &Values,
    var: &str,
    spec: &InputSpec,
    path: &ValuesPath,
) -> Result<Vec<Derived>, Problem> {
    let Some(value) = values.get(path) else {
        return Ok(Vec::new());
    };
    let origin = values
        .origin(path)
        .map_or_else(|| format!("values path {path}"), ToString::to_string);
    let invalid = |why: String| {
        Problem::new(format!("{var} is not a valid {}", type_name(spec.kind)))
            .at(origin.clone())
            .because(why)
            .hint(format!("set {var} to {}", example_text(spec)))
    };
    let wrong_type = |value: &Value| {
        let shown = if spec.kind == InputType::Secret {
            "a value".to_owned()
        } else {
            kind_of(value).to_owned()
        };
        invalid(format!("expected {}, found {shown}", type_name(spec.kind)))
    };
    let ok = match spec.kind {
        InputType::Url => {
            let Value::String(text) = value else {
                return Err(wrong_type(value));
            };
            let host = check_url(text, spec.scheme.as_deref())
                .map_err(|why| invalid(format!("{text:?}: {why}")))?;
            let Some(host_path) = &spec.derive.host else {
                return Ok(Vec::new());
            };
            check_host(text, &host, host_path).map_err(|why| {
                invalid(format!("{text:?}: {why}")).hint(format!(
                    "set {var} to https://<a DNS name>, e.g. https://app.example.com"
                ))
            })?;
            let host_path = ValuesPath::parse(host_path).map_err(|why| {
                Problem::new(format!("input {var} derives into a malformed path")).because(why)
            })?;
            let from = format!("{var} ({origin})");
            return Ok(vec![Derived {
                path: host_path,
                value: Value::String(host),
                origin: Origin::Derived { from },
            }]);
        }
        InputType::String | InputType::Secret => value.is_string(),
        InputType::Int => value.is_i64() || value.is_u64(),
        InputType::Bool => value.is_boolean(),
    };
    if ok {
        Ok(Vec::new())
    } else {
        Err(wrong_type(value))
    }
}

/// Checks that `text` is an absolute URL with a host, the right scheme and no query or fragment,
/// and returns its host.
fn check_url(text: &str, scheme: Option<&str>) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|err| match err {
        url::ParseError::RelativeUrlWithoutBase => {
            "not an absolute URL (it needs a scheme, like https://)".to_owned()
        }
        url::ParseError::EmptyHost => "the URL has no host".to_owned(),
        other => other.to_string(),
    })?;
    if let Some(scheme) = scheme
        && url.scheme() != scheme
    {
        return Err(format!("the scheme must be {scheme}, not {}", url.scheme()));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?;
    if url.query().is_some() {
        return Err("the URL must not have a query (`?...`)".into());
    }
    if url.fragment().is_some() {
        return Err("the URL must not have a fragment (`#...`)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry credentials".into());
    }
    Ok(host.to_owned())
}

/// The host of a URL whose host plane derives into the values (where the bundle uses it as a DNS
/// name, e.g. an Ingress host): a DNS-1123 subdomain, not an IP address, and no port beside it.
fn check_host(text: &str, host: &str, host_path: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| err.to_string())?;
    if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
        return Err(format!(
            "the host {host} is an IP address; its host feeds {host_path}, which an Ingress uses \
             as its host, and an Ingress host may not be an IP address: it must be a DNS name"
        ));
    }
    if let Some(port) = url.port() {
        return Err(format!(
            "the URL must not have a port (:{port}); its host feeds {host_path}, which an Ingress \
             serves on the standard port"
        ));
    }
    crate::k8s_validation::ingress_host(host)
        .map_err(|why| format!("the host `{host}` is not a valid DNS name: {why}"))
}

fn type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::Url => "URL",
        InputType::String => "string",
        InputType::Int => "whole number",
        InputType::Bool => "boolean",
        InputType::Secret => "secret string",
    }
}

fn example_text(spec: &InputSpec) -> String {
    match spec.kind {
        InputType::Url => format!(
            "an absolute {}://host URL",
            spec.scheme.as_deref().unwrap_or("https")
        ),
        InputType::Int => "a whole number".into(),
        InputType::Bool => "true or false".into(),
        InputType::String | InputType::Secret => "a non-empty string".into(),
    }
}

fn example(spec: &InputSpec) -> String {
    match spec.kind {
        InputType::Url => format!("={}://...", spec.scheme.as_deref().unwrap_or("https")),
        _ => "=...".into(),
    }
}

/// The reason a raw environment value was rejected; a secret's value is never shown.
fn why_with_value(kind: InputType, raw: &str, why: &str) -> String {
    if kind == InputType::Secret {
        why.to_owned()
    } else {
        format!("{raw:?}: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run_url() -> (String, InputSpec) {
        let spec: InputSpec = serde_yaml_ng::from_str(
            "type: url\npath: global.runUrl\nrequired: true\nscheme: https\nderive: {host: global.runHost}\n",
        )
        .unwrap();
        ("SHOP_URL".into(), spec)
    }

    fn run(env: Option<&str>, preset: Option<&str>) -> (Values, Vec<Problem>) {
        let mut values = Values::default();
        if let Some(url) = preset {
            values
                .set(
                    &ValuesPath::parse("global.runUrl").unwrap(),
                    json!(url),
                    &Origin::Set { arg: "p".into() },
                )
                .unwrap();
        }
        let env_value = env.map(str::to_owned);
        let (problems, derived) =
            apply_inputs(&mut values, &[run_url()], &|_: &str| env_value.clone());
        for d in derived {
            values.set(&d.path, d.value, &d.origin).unwrap();
        }
        (values, problems)
    }

    #[test]
    fn environment_beats_earlier_layers_and_derives_the_host() {
        let (values, problems) = run(
            Some("https://shop.my-company.net"),
            Some("https://eu.shop.example"),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            values.tree()["global"]["runHost"],
            json!("shop.my-company.net")
        );
        let origin = values
            .origin(&ValuesPath::parse("global.runHost").unwrap())
            .unwrap()
            .to_string();
        assert!(origin.contains("SHOP_URL"), "{origin}");
    }

    #[test]
    fn bad_urls_fail_with_the_reason() {
        for (url, why) in [
            ("http://x", "scheme must be https"),
            ("not a url", "not an absolute URL"),
            ("https://", "no host"),
            ("https://a.example/?x=1", "query"),
            ("https://10.0.0.1", "may not be an IP address"),
            ("https://[::1]/", "may not be an IP address"),
            (
                "https://-bad-.io",
                "must start and end with a letter or digit (`-bad-`",
            ),
            ("https://a..io", "empty label"),
            ("https://x.io:8443", "must not have a port (:8443)"),
            ("https://a_b.io", "`_` is not allowed"),
        ] {
            let (_, problems) = run(Some(url), None);
            assert_eq!(problems.len(), 1, "{url}");
            let text = problems[0].to_string();
            assert!(
                text.contains("SHOP_URL") && text.contains(why),
                "{url}: {text}"
            );
        }
    }

    #[test]
    fn a_missing_required_input_says_how_to_give_it() {
        let (_, problems) = run(None, None);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].what.contains("SHOP_URL is required"));
        assert!(problems[0].hint.as_deref().unwrap().contains("--profile"));
    }

    #[test]
    fn typed_environment_values() {
        assert_eq!(typed(InputType::Int, "42"), Ok(json!(42)));
        assert!(typed(InputType::Int, "4x").is_err());
        assert_eq!(typed(InputType::Bool, "yes"), Ok(json!(true)));
        assert!(typed(InputType::Bool, "maybe").is_err());
        assert!(
            why_with_value(InputType::Secret, "hunter2", "bad")
                .find("hunter2")
                .is_none()
        );
    }
}
