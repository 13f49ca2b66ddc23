//! Data on stdout as JSON or YAML; the YAML written so that YAML 1.1 readers (kubectl, Helm,
//! go-yaml v2) read it back as written.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Words YAML 1.1 reads as booleans. serde_yaml_ng writes YAML 1.2, where they are plain
/// strings, so it leaves them unquoted; `kubectl apply` would then read the string `yes` as `true`.
const YAML11_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// `value` as pretty JSON (with a final newline) or as YAML, for `-o json` / `-o yaml`.
///
/// # Errors
/// When it cannot be serialized.
pub fn to_format(value: &serde_json::Value, yaml: bool) -> Result<String, crate::error::Error> {
    if yaml {
        return to_string(value)
            .map_err(|err| crate::error::Error::failed("cannot write YAML", &err));
    }
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|err| crate::error::Error::failed("cannot write JSON", &err))?;
    text.push('\n');
    Ok(text)
}

/// Serializes `value` as YAML, quoting the strings a YAML 1.1 reader would take for booleans.
///
/// # Errors
/// The serializer's.
pub fn to_string(value: &serde_json::Value) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(value).map(|text| quote_yaml11_booleans(&text))
}

/// Puts single quotes around every plain scalar of `text` that YAML 1.1 reads as a boolean. In
/// serde_yaml_ng's output such a scalar can only be a string: a boolean is written `true`/`false`.
fn quote_yaml11_booleans(text: &str) -> String {
    #[derive(Default)]
    struct Finder {
        /// (char index, length in chars) of each scalar to quote.
        spans: Vec<(usize, usize)>,
    }
    impl MarkedEventReceiver for Finder {
        fn on_event(&mut self, event: Event, mark: Marker) {
            if let Event::Scalar(value, TScalarStyle::Plain, ..) = event
                && YAML11_BOOLEANS.contains(&value.as_str())
            {
                self.spans.push((mark.index(), value.chars().count()));
            }
        }
    }
    let mut finder = Finder::default();
    if Parser::new_from_str(text).load(&mut finder, true).is_err() || finder.spans.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2 * finder.spans.len());
    let mut spans = finder.spans.iter().peekable();
    let mut end = None;
    for (index, c) in text.chars().enumerate() {
        if let Some(&&(start, len)) = spans.peek()
            && start == index
        {
            out.push('\'');
            end = Some(start + len);
            spans.next();
        }
        out.push(c);
        if end == Some(index + 1) {
            out.push('\'');
            end = None;
        }
    }
    if end.is_some() {
        out.push('\'');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml11_booleans_written_as_strings_stay_strings() {
        let value = json!({"on": "yes", "flags": ["no", "N", "true-ish", "maybe"], "real": true,
            "env": [{"name": "X", "value": "Off"}], "text": "say yes"});
        let text = to_string(&value).unwrap();
        for quoted in [
            "'on':",
            "- 'no'",
            "- 'N'",
            "value: 'Off'",
            "real: true",
            "text: say yes",
        ] {
            assert!(text.contains(quoted), "{quoted:?} in\n{text}");
        }
        // Read back, as a YAML 1.2 reader would, it is the same value.
        let back: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
