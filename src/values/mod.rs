//! Values: load each layer with the origin of every value, merge them in order, and check them.

mod inputs;
mod lines;
mod origin;
mod path;
mod schema;
mod secrets;
mod set;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use inputs::{Environment, InputSpec, InputType, apply_inputs};
pub use lines::LineMap;
pub use origin::Origin;
pub use path::{Seg, ValuesPath};
pub use schema::validate;
pub use secrets::SecretInputs;
pub use set::SetArg;

use crate::error::Problem;

/// The merged values and the origin of each value in them.
#[derive(Debug, Clone)]
pub struct Values {
    tree: Value,
    origins: BTreeMap<ValuesPath, Origin>,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            tree: Value::Object(Map::new()),
            origins: BTreeMap::new(),
        }
    }
}

/// A YAML text parsed as values, with the positions of its keys.
#[derive(Debug)]
pub struct YamlLayer {
    pub value: Value,
    pub lines: LineMap,
}

/// Parses a YAML text into a mapping of values.
///
/// # Errors
/// Problems naming `file:line:col` when the text is not YAML, not a mapping, or sets a key twice.
pub fn parse_yaml(text: &str, file: &str) -> Result<YamlLayer, Vec<Problem>> {
    let value: Value = match serde_yaml_ng::from_str::<Option<Value>>(text) {
        Ok(value) => value.unwrap_or(Value::Object(Map::new())),
        Err(err) => return Err(vec![yaml_problem(&err, file, "invalid YAML")]),
    };
    if !value.is_object() {
        return Err(vec![
            Problem::new("expected a mapping of values at the top level")
                .at(format!("{file}:1:1"))
                .because(format!("found {}", kind_of(&value))),
        ]);
    }
    let duplicates = LineMap::duplicate_keys(text, file);
    if !duplicates.is_empty() {
        return Err(duplicates);
    }
    Ok(YamlLayer {
        value,
        lines: LineMap::of(text),
    })
}

/// A YAML error as a problem at `file:line:col`.
pub fn yaml_problem(err: &serde_yaml_ng::Error, file: &str, what: &str) -> Problem {
    let location = err.location().map_or_else(
        || file.to_owned(),
        |at| format!("{file}:{}:{}", at.line(), at.column()),
    );
    Problem::new(what).at(location).because(yaml_message(err))
}

/// A YAML error's message without the " at line L column C" serde_yaml_ng appends: the
/// location is said apart.
pub fn yaml_message(err: &serde_yaml_ng::Error) -> String {
    let message = err.to_string();
    message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned()
}

/// The JSON kind of a value, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Values {
    /// The merged tree.
    pub fn tree(&self) -> &Value {
        &self.tree
    }

    /// The value at `path`, if any.
    pub fn get(&self, path: &ValuesPath) -> Option<&Value> {
        path.find_in(&self.tree)
    }

    /// Where the value at `path` (or its nearest ancestor with a known origin) came from.
    pub fn origin(&self, path: &ValuesPath) -> Option<&Origin> {
        let mut path = path.clone();
        loop {
            if let Some(origin) = self.origins.get(&path) {
                return Some(origin);
            }
            if path.is_root() {
                return None;
            }
            path = path.parent();
        }
    }

    /// Merges one layer on top: mappings merge key by key, anything else replaces, and `null`
    /// removes the key. `origin_of` gives the origin of each path the layer sets.
    pub fn merge(&mut self, layer: &Value, origin_of: &dyn Fn(&ValuesPath) -> Origin) {
        let mut tree = std::mem::take(&mut self.tree);
        self.merge_into(&mut tree, layer, &ValuesPath::root(), origin_of);
        self.tree = tree;
    }

    fn merge_into(
        &mut self,
        target: &mut Value,
        layer: &Value,
        path: &ValuesPath,
        origin_of: &dyn Fn(&ValuesPath) -> Origin,
    ) {
        match (target, layer) {
            (Value::Object(target), Value::Object(layer)) => {
                for (key, value) in layer {
                    let child = path.key(key);
                    if value.is_null() {
                        target.remove(key);
                        self.forget(&child);
                        continue;
                    }
                    match target.get_mut(key) {
                        Some(existing) if existing.is_object() && value.is_object() => {
                            self.merge_into(existing, value, &child, origin_of);
                        }
                        _ => {
                            self.forget(&child);
                            target.insert(key.clone(), value.clone());
                            self.remember(&child, value, origin_of);
                        }
                    }
                }
            }
            (target, layer) => {
                self.forget(path);
                *target = layer.clone();
                self.remember(path, layer, origin_of);
            }
        }
    }

    /// Sets one value, replacing what was there; lists may grow by one at their end.
    ///
    /// # Errors
    /// A phrase when the path runs through a scalar or past the end of a list.
    pub fn set(&mut self, path: &ValuesPath, value: Value, origin: &Origin) -> Result<(), String> {
        let mut node = &mut self.tree;
        for (depth, seg) in path.0.iter().enumerate() {
            let here = ValuesPath(path.0[..depth].to_vec());
            if node.is_null() {
                *node = match seg {
                    Seg::Key(_) => Value::Object(Map::new()),
                    Seg::Index(_) => Value::Array(Vec::new()),
                };
            }
            node = match (seg, node) {
                (Seg::Key(key), Value::Object(map)) => {
                    map.entry(key.clone()).or_insert(Value::Null)
                }
                (Seg::Index(index), Value::Array(list)) => {
                    if *index == list.len() {
                        list.push(Value::Null);
                    }
                    let len = list.len();
                    list.get_mut(*index).ok_or_else(|| {
                        format!("index {index} is past the end of {here}, which has {len} item(s)")
                    })?
                }
                (Seg::Key(key), other) => {
                    return Err(format!(
                        "cannot set key `{key}` inside {here}, which is {}",
                        kind_of(other)
                    ));
                }
                (Seg::Index(index), other) => {
                    return Err(format!(
                        "cannot use index [{index}] on {here}, which is {}",
                        kind_of(other)
                    ));
                }
            };
        }
        self.forget(path);
        self.remember(path, &value, &|_| origin.clone());
        *self.node_mut(path) = value;
        Ok(())
    }

    /// The node at a path that [`Values::set`] has just created.
    fn node_mut(&mut self, path: &ValuesPath) -> &mut Value {
        let mut node = &mut self.tree;
        for seg in &path.0 {
            node = match (seg, node) {
                (Seg::Key(key), Value::Object(map)) => {
                    map.entry(key.clone()).or_insert(Value::Null)
                }
                (Seg::Index(index), Value::Array(list)) => &mut list[*index],
                (_, other) => return other,
            };
        }
        node
    }

    fn forget(&mut self, path: &ValuesPath) {
        self.origins.retain(|known, _| !known.starts_with(path));
    }

    fn remember(
        &mut self,
        path: &ValuesPath,
        value: &Value,
        origin_of: &dyn Fn(&ValuesPath) -> Origin,
    ) {
        self.origins.insert(path.clone(), origin_of(path));
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    self.remember(&path.key(key), child, origin_of);
                }
            }
            Value::Array(list) => {
                for (index, child) in list.iter().enumerate() {
                    self.remember(&path.index(index), child, origin_of);
                }
            }
            _ => {}
        }
    }
}

/// The origin function for a YAML file layer.
pub fn file_origin(file: &str, lines: &LineMap) -> impl Fn(&ValuesPath) -> Origin {
    let file = file.to_owned();
    let lines = lines.clone();
    move |path| {
        let (line, col) = lines.find(path).unwrap_or((1, 1));
        Origin::File {
            file: file.clone(),
            line,
            col,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> ValuesPath {
        ValuesPath::parse(text).unwrap()
    }

    fn layer(values: &mut Values, text: &str, file: &str) {
        let parsed = parse_yaml(text, file).unwrap();
        values.merge(&parsed.value, &file_origin(file, &parsed.lines));
    }

    #[test]
    fn later_layers_win_and_remember_their_origin() {
        let mut values = Values::default();
        layer(
            &mut values,
            "a:\n  b: 1\n  c: 2\nlist: [1, 2]\n",
            "values.yaml",
        );
        layer(&mut values, "a:\n  c: 3\nlist: [9]\n", "profile.yaml");
        values
            .set(
                &p("a.b"),
                json!(7),
                &Origin::Set {
                    arg: "a.b=7".into(),
                },
            )
            .unwrap();

        assert_eq!(values.tree(), &json!({"a": {"b": 7, "c": 3}, "list": [9]}));
        assert_eq!(values.origin(&p("a.b")).unwrap().to_string(), "--set a.b=7");
        assert_eq!(
            values.origin(&p("a.c")).unwrap().to_string(),
            "profile.yaml:2:3"
        );
        // A replaced list forgets the origins of the items it replaced.
        assert_eq!(
            values.origin(&p("list[1]")).unwrap().to_string(),
            "profile.yaml:3:1"
        );
    }

    #[test]
    fn null_removes_a_key() {
        let mut values = Values::default();
        layer(&mut values, "a: {b: 1, c: 2}\n", "values.yaml");
        layer(&mut values, "a: {b: null}\n", "override.yaml");
        assert_eq!(values.tree(), &json!({"a": {"c": 2}}));
    }

    #[test]
    fn set_grows_lists_by_one_and_rejects_gaps() {
        let mut values = Values::default();
        layer(&mut values, "l: [a]\ns: 1\n", "values.yaml");
        let origin = Origin::Set { arg: "x".into() };
        values.set(&p("l[1]"), json!("b"), &origin).unwrap();
        assert_eq!(values.get(&p("l")), Some(&json!(["a", "b"])));
        assert!(
            values
                .set(&p("l[5]"), json!("c"), &origin)
                .unwrap_err()
                .contains("past the end")
        );
        assert!(
            values
                .set(&p("s.x"), json!(1), &origin)
                .unwrap_err()
                .contains("a number")
        );
        values
            .set(&p("new.deep[0].k"), json!(true), &origin)
            .unwrap();
        assert_eq!(values.get(&p("new")), Some(&json!({"deep": [{"k": true}]})));
    }

    #[test]
    fn yaml_errors_carry_file_line_and_column() {
        let err = parse_yaml("a:\n  b: [1, 2\nc: 3\n", "bad.yaml").unwrap_err();
        let location = err[0].location.clone().unwrap();
        assert!(location.starts_with("bad.yaml:"), "{location}");
        assert_ne!(location, "bad.yaml:1:1");
        let err = parse_yaml("- 1\n- 2\n", "list.yaml").unwrap_err();
        assert!(err[0].to_string().contains("expected a mapping"));
        let err = parse_yaml("a:\n  b: 1\n  b: 2\n", "dup.yaml").unwrap_err();
        assert_eq!(err[0].location.as_deref(), Some("dup.yaml:3:3"));
    }
}
