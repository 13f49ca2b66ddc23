//! Learns what of a render's inputs must never be shown — every value a `secret` input takes,
//! from whichever source, and the credentials of `url` inputs — and registers it with
//! [`crate::redact`] before any message could show it.

use serde_json::Value;

use super::inputs::{InputSpec, InputType};
use super::path::ValuesPath;

/// The declared inputs whose values are secret, or may carry credentials.
pub struct SecretInputs {
    inputs: Vec<(InputType, ValuesPath)>,
}

impl SecretInputs {
    /// The `secret` and `url` inputs of `inputs` (a malformed path is reported elsewhere).
    pub fn of(inputs: &[(String, InputSpec)]) -> Self {
        Self {
            inputs: inputs
                .iter()
                .filter(|(_, spec)| matches!(spec.kind, InputType::Secret | InputType::Url))
                .filter_map(|(_, spec)| Some((spec.kind, ValuesPath::parse(&spec.path).ok()?)))
                .collect(),
        }
    }

    /// Registers what a raw input text (an environment variable's, a profile's `env` entry)
    /// holds.
    pub fn raw(&self, inputs: &[(String, InputSpec)], var: &str, raw: &str) {
        if let Some((_, spec)) = inputs.iter().find(|(name, _)| name == var) {
            register(spec.kind, &Value::String(raw.to_owned()));
        }
    }

    /// Registers the values a layer (a values file, a profile's values, the merged tree) gives
    /// the inputs' paths.
    pub fn layer(&self, layer: &Value) {
        for (kind, path) in &self.inputs {
            if let Some(value) = path.find_in(layer) {
                register(*kind, value);
            }
        }
    }

    /// Registers the values `--set` arguments give the inputs' paths, from the raw arguments:
    /// one that does not parse is still shown in its error, so it is learnt too.
    pub fn sets(&self, raws: &[String]) {
        for raw in raws {
            let Some((path, text)) = raw.split_once('=') else {
                continue;
            };
            let Ok(path) = ValuesPath::parse(path.trim()) else {
                continue;
            };
            for (kind, input) in &self.inputs {
                if path.starts_with(input) {
                    register(*kind, &Value::String(text.to_owned()));
                } else if input.starts_with(&path) {
                    // `--set parent={token: ...}`: the whole text, and the value inside it.
                    register(*kind, &Value::String(text.to_owned()));
                    let inner = ValuesPath(input.0[path.0.len()..].to_vec());
                    if let Ok(parsed) = serde_yaml_ng::from_str::<Value>(text)
                        && let Some(value) = inner.find_in(&parsed)
                    {
                        register(*kind, value);
                    }
                }
            }
        }
    }
}

/// Registers a value of an input of `kind`: a secret's every scalar, a URL's credentials.
fn register(kind: InputType, value: &Value) {
    match (kind, value) {
        (InputType::Secret, Value::String(text)) => crate::redact::register(text),
        (InputType::Secret, Value::Number(_) | Value::Bool(_)) => {
            crate::redact::register(&value.to_string());
        }
        (InputType::Secret, Value::Array(items)) => {
            for item in items {
                register(kind, item);
            }
        }
        (InputType::Secret, Value::Object(map)) => {
            for item in map.values() {
                register(kind, item);
            }
        }
        (InputType::Url, Value::String(text)) => crate::redact::register_url_credentials(text),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs() -> Vec<(String, InputSpec)> {
        let spec = |text: &str| serde_yaml_ng::from_str::<InputSpec>(text).unwrap();
        vec![
            ("TOKEN".into(), spec("type: secret\npath: api.token\n")),
            ("URL".into(), spec("type: url\npath: global.url\n")),
            ("N".into(), spec("type: int\npath: n\n")),
        ]
    }

    #[test]
    fn every_source_of_a_secret_is_learnt() {
        let inputs = inputs();
        let secrets = SecretInputs::of(&inputs);
        secrets.raw(&inputs, "TOKEN", "values-secrets-from-env");
        secrets.raw(&inputs, "N", "values-secrets-not-secret");
        secrets.layer(&json!({"api": {"token": "values-secrets-from-file"}}));
        secrets.sets(&[
            "api.token=values-secrets-from-set".into(),
            "api={token: values-secrets-nested}".into(),
            "api.token=[values-secrets-malformed".into(),
            "global.url=https://u:values-secrets-pw@h".into(),
        ]);
        for secret in [
            "values-secrets-from-env",
            "values-secrets-from-file",
            "values-secrets-from-set",
            "values-secrets-nested",
            "[values-secrets-malformed",
            "values-secrets-pw",
        ] {
            assert!(crate::redact::holds_secret(secret), "{secret}");
        }
        assert!(!crate::redact::holds_secret("values-secrets-not-secret"));
    }
}
