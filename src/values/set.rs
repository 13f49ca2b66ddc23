//! `--set path=value` arguments: a values path and a YAML-typed value.

use serde_json::Value;

use super::path::ValuesPath;
use crate::error::Problem;

/// One parsed `--set` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct SetArg {
    pub raw: String,
    pub path: ValuesPath,
    pub value: Value,
}

impl SetArg {
    /// Parses `path=value`. The value is YAML: `3` is a number, `true` a boolean, `"3"` a string,
    /// `[a, b]` a list; an empty value is the empty string.
    ///
    /// # Errors
    /// A problem naming the argument and what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let bad = |why: String| {
            Problem::new("malformed --set argument")
                .at(format!("--set {raw}"))
                .because(why)
                .hint("write --set path.to.key=value, e.g. --set api.replicas=2 or --set 'web.hosts[0]=example.com'")
        };
        let Some((path, value)) = raw.split_once('=') else {
            return Err(bad("there is no `=` between the path and the value".into()));
        };
        let path = ValuesPath::parse(path.trim()).map_err(bad)?;
        let value = if value.is_empty() {
            Value::String(String::new())
        } else {
            let parsed: Value = serde_yaml_ng::from_str(value)
                .map_err(|err| bad(format!("the value is not valid YAML: {err}")))?;
            if value.contains('\n') {
                return Err(bad(
                    "the value spans several lines; use -f FILE for that".into()
                ));
            }
            // `a=` is handled above; a bare `~` or `null` removes the key.
            parsed
        };
        Ok(Self {
            raw: raw.to_owned(),
            path,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_yaml_typed() {
        let cases = [
            ("a.b=3", json!(3)),
            ("a=true", json!(true)),
            ("a=\"3\"", json!("3")),
            ("a=hello world", json!("hello world")),
            ("a=[x, y]", json!(["x", "y"])),
            ("a=", json!("")),
            ("a=1.5", json!(1.5)),
            (
                "a=https://x.example/p?q=1",
                json!("https://x.example/p?q=1"),
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(SetArg::parse(raw).unwrap().value, expected, "{raw}");
        }
        assert_eq!(
            SetArg::parse("w[0].n=1").unwrap().path.to_string(),
            "w[0].n"
        );
    }

    #[test]
    fn malformed_arguments_say_why() {
        for (raw, why) in [
            ("novalue", "no `=`"),
            ("=3", "empty"),
            ("a..b=1", "empty key"),
            ("a[x]=1", "not a list index"),
            ("a=[1, 2", "not valid YAML"),
        ] {
            let problem = SetArg::parse(raw).unwrap_err();
            assert!(problem.to_string().contains(why), "{raw}: {problem}");
            assert_eq!(
                problem.location.as_deref(),
                Some(format!("--set {raw}").as_str())
            );
        }
    }
}
