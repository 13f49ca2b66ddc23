//! Renders a plan as unified diffs of normalised YAML, with a one-line summary.

use anstyle::{AnsiColor, Style};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::kube::{Action, Plan, PlannedObject};

fn yaml(value: Option<&Value>) -> String {
    value
        .map(|v| serde_yaml_ng::to_string(v).unwrap_or_default())
        .unwrap_or_default()
}

fn paint(text: &str, color: Option<AnsiColor>, enabled: bool) -> String {
    match (color, enabled) {
        (Some(color), true) => {
            let style = Style::new().fg_color(Some(color.into()));
            format!("{style}{text}{style:#}")
        }
        _ => text.to_owned(),
    }
}

/// The diff of one object: a header line, then a unified diff (3 lines of context).
pub fn object_diff(object: &PlannedObject, color: bool) -> String {
    let mut out = String::new();
    let header_color = match object.action {
        Action::Create => Some(AnsiColor::Green),
        Action::Configure => Some(AnsiColor::Yellow),
        Action::Prune | Action::Delete => Some(AnsiColor::Red),
        _ => None,
    };
    let mut header = format!("{} {}", object.action, object.subject);
    if let Some(note) = &object.note {
        header.push_str(&format!(" ({note})"));
    }
    out.push_str(&paint(&header, header_color, color));
    out.push('\n');
    if object.action == Action::Skip {
        return out;
    }
    let before = yaml(object.before.as_ref());
    let after = if object.action == Action::Prune {
        String::new()
    } else {
        yaml(object.after.as_ref())
    };
    let diff = TextDiff::from_lines(&before, &after);
    for group in diff.grouped_ops(3) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let (sign, line_color) = match change.tag() {
                    ChangeTag::Delete => ("-", Some(AnsiColor::Red)),
                    ChangeTag::Insert => ("+", Some(AnsiColor::Green)),
                    ChangeTag::Equal => (" ", None),
                };
                let line = format!("{sign} {}", change.value().trim_end_matches('\n'));
                out.push_str(&paint(&line, line_color, color));
                out.push('\n');
            }
        }
        out.push_str("  ...\n");
    }
    out
}

/// Every object that changes (or is kept though no longer rendered), then the summary line.
pub fn plan_diff(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    for object in plan
        .objects
        .iter()
        .filter(|o| o.action != Action::Unchanged)
    {
        out.push_str(&object_diff(object, color));
        out.push('\n');
    }
    out.push_str(&plan.summary());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn planned(action: Action, before: Option<Value>, after: Option<Value>) -> PlannedObject {
        PlannedObject {
            subject: "ConfigMap/ns/a".into(),
            id: crate::bundle::ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("ns".into()),
                name: "a".into(),
            },
            component: "c".into(),
            action,
            note: None,
            desired: None,
            before,
            after,
            generated_keys: None,
            owner: None,
            warning: None,
            dry_run_passed: true,
            binds_new_role: false,
            was_ready: false,
        }
    }

    #[test]
    fn shows_only_changed_lines_with_context() {
        let before = json!({"data": {"a": "1", "b": "2"}, "kind": "ConfigMap"});
        let after = json!({"data": {"a": "1", "b": "3"}, "kind": "ConfigMap"});
        let text = object_diff(
            &planned(Action::Configure, Some(before), Some(after)),
            false,
        );
        assert!(text.starts_with("configure ConfigMap/ns/a\n"), "{text}");
        assert!(
            text.contains("-   b: '2'") && text.contains("+   b: '3'"),
            "{text}"
        );
        assert!(text.contains("    a: '1'"), "{text}");
    }

    #[test]
    fn the_summary_counts_every_action() {
        let plan = Plan {
            objects: vec![
                planned(Action::Create, None, Some(json!({}))),
                planned(Action::Unchanged, None, None),
                planned(Action::Prune, Some(json!({})), None),
            ],
            ..Plan::default()
        };
        let text = plan_diff(&plan, false);
        assert!(
            text.ends_with("1 to create, 0 to change, 1 to prune, 1 unchanged\n"),
            "{text}"
        );
        assert!(!text.contains("unchanged ConfigMap"));
    }
}
