//! The renderer is total: whatever a template's expressions compute (integer extremes, overflowing
//! and zero arithmetic, filters on the wrong types, ranges of any size), `bundle::render` returns
//! objects or problems, and never panics out of plane nor runs over its range budget. A property
//! test over generated template snippets (`PROPTEST_CASES`, 512 by default: seconds in CI), plus
//! the inputs that broke Tera before, kept as regression cases.

use std::collections::BTreeMap;

use plane::bundle::{self, Addon, AddonManifest, RenderBudget, RenderContext, Sources, Template};
use plane::values::Values;
use proptest::prelude::*;
use serde_json::Value;

/// A bundle of one component whose one template is `body` inside a ConfigMap's data.
fn addon(body: &str) -> Addon {
    let manifest = AddonManifest::parse(
        "name: fuzz\nversion: 0.0.1\ndescription: fuzz\ncomponents:\n  - name: c\n",
        "addon.yaml",
    )
    .unwrap();
    Addon {
        manifest,
        values_file: "values.yaml".into(),
        values_text: String::new(),
        schema_file: "values.schema.json".into(),
        schema: Value::Bool(true),
        templates: vec![Template {
            component: "c".into(),
            name: "components/c/t.yaml.tera".into(),
            display: "t.yaml.tera".into(),
            text: format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: f, namespace: ns}}\ndata: {{x: {{{{ ({body}) | json_encode() }}}}}}\n"
            ),
        }],
        files: BTreeMap::new(),
        digest: String::new(),
    }
}

/// Renders `body`; a result either way, never a panic out of the call.
fn render(body: &str) -> Result<(), String> {
    let sources = Sources::embedded();
    let budget = RenderBudget {
        range: 1000,
        ..RenderBudget::default()
    };
    let ctx = RenderContext {
        release: "fuzz",
        state_namespace: "plane-system",
        instance: None,
        profile: None,
        shared: &sources.templates,
        budget: &budget,
        on_template: None,
    };
    bundle::render(&addon(body), &Values::default(), &ctx)
        .map(|_| ())
        .map_err(|err| format!("{:?}", err.problems()))
}

/// Numbers that break arithmetic: the extremes, zero, minus one.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-9223372036854775808".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("1".to_owned()),
        Just("1.5".to_owned()),
        Just("-0.0".to_owned()),
        Just("1e308".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
    ]
}

/// A scalar: a number, a string, a boolean, a list.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        number(),
        Just("\"abc\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("true".to_owned()),
        Just("[1, 2, 3]".to_owned()),
    ]
}

/// An expression of bounded depth: arithmetic, comparisons, filters, `range` and `get_env` calls.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        scalar(),
        (number(), number(), number())
            .prop_map(|(s, e, st)| format!("range(start={s}, end={e}, step_by={st})")),
        number().prop_map(|e| format!("range(end={e})")),
        Just("get_env(name=\"HOME\")".to_owned()),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let filter = prop_oneof![
            Just("abs"),
            Just("round"),
            Just("int"),
            Just("float"),
            Just("length"),
            Just("reverse"),
            Just("first"),
            Just("last"),
            Just("upper"),
            Just("json_encode()"),
            Just("truncate(length=2)"),
            Just("slice(start=1, end=-1)"),
            Just("filesizeformat"),
            Just("digest"),
        ];
        prop_oneof![
            (
                inner.clone(),
                prop_oneof![
                    Just("+"),
                    Just("-"),
                    Just("*"),
                    Just("/"),
                    Just("%"),
                    Just("=="),
                    Just("<"),
                    Just("and"),
                    Just("~"),
                ],
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            (inner.clone(), filter).prop_map(|(a, f)| format!("({a}) | {f}")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_expression_renders_or_is_refused(body in expression()) {
        let outcome = std::panic::catch_unwind(|| render(&body));
        prop_assert!(outcome.is_ok(), "rendering {body} panicked out of bundle::render");
    }
}

/// What broke Tera before plane caught it: each is refused with a message, not a crash.
#[test]
fn the_inputs_that_broke_tera_are_refused() {
    for (body, why) in [
        ("-9223372036854775808 % -1", "overflow"),
        ("-9223372036854775808 / -1", ""),
        ("range(end=100000000)", "range budget"),
        ("range(end=10, step_by=0)", "step_by of at least 1"),
        ("get_env(name=\"HOME\")", "get_env() is not available"),
    ] {
        let outcome = std::panic::catch_unwind(|| render(body));
        let result = outcome.unwrap_or_else(|_| panic!("{body} panicked"));
        if why.is_empty() {
            continue;
        }
        let err = result.expect_err(body);
        assert!(err.contains(why), "{body}: {err}");
    }
}
