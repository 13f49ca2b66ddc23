//! The line and column of every key and list item in a YAML document, for value origins.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::ValuesPath;
use crate::error::Problem;

/// Where each values path starts in one YAML text (1-based line and column).
#[derive(Debug, Default, Clone)]
pub struct LineMap {
    positions: HashMap<ValuesPath, (usize, usize)>,
}

impl LineMap {
    /// Reads the positions of a YAML text. A text that does not parse yields an empty map: the
    /// caller reports syntax errors from the value parser, which has the better message.
    pub fn of(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            positions: builder.positions,
        }
    }

    /// Every key that appears twice in one mapping of `text` (YAML allows a key once; parsers keep
    /// the last silently), each as a problem at the second key naming the first. A text that does
    /// not parse yields none: its syntax error is reported by the value parser.
    pub fn duplicate_keys(text: &str, file: &str) -> Vec<Problem> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, true).is_err() {
            return Vec::new();
        }
        builder
            .duplicates
            .into_iter()
            .map(|dup| {
                let path = dup.path.to_string();
                let key = dup.path.0.last().map_or_else(String::new, |seg| match seg {
                    super::path::Seg::Key(key) => key.clone(),
                    super::path::Seg::Index(index) => index.to_string(),
                });
                Problem::new(format!("duplicate key `{key}`"))
                    .at(format!("{file}:{}:{}", dup.at.0, dup.at.1))
                    .because(format!(
                        "`{path}` is first set at {file}:{}:{}; a key may appear once per mapping, \
                         and the last one would silently win",
                        dup.first.0, dup.first.1
                    ))
                    .hint(format!("keep one `{key}` and delete the other"))
            })
            .collect()
    }

    /// `file:line:col` of `path` (or of its nearest ancestor), or `file` alone: where a
    /// problem with that value is reported.
    pub fn at(&self, file: &str, path: &ValuesPath) -> String {
        match self.find(path) {
            Some((line, col)) => format!("{file}:{line}:{col}"),
            None => file.to_owned(),
        }
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &ValuesPath) -> Option<(usize, usize)> {
        let mut path = path.clone();
        loop {
            if let Some(position) = self.positions.get(&path) {
                return Some(*position);
            }
            if path.is_root() {
                return None;
            }
            path = path.parent();
        }
    }
}

enum Frame {
    Mapping {
        path: ValuesPath,
        key: Option<String>,
        /// The keys seen so far in this mapping and where.
        seen: HashMap<String, (usize, usize)>,
    },
    Sequence {
        path: ValuesPath,
        next: usize,
    },
}

/// A key set twice in one mapping.
struct Duplicate {
    path: ValuesPath,
    at: (usize, usize),
    first: (usize, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<ValuesPath, (usize, usize)>,
    duplicates: Vec<Duplicate>,
}

impl Builder {
    /// The path of the node that starts now, or `None` when the node is a mapping key.
    fn node_path(&mut self, mark: Marker) -> Option<ValuesPath> {
        let position = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(ValuesPath::root()),
            Some(Frame::Mapping {
                key: key @ None, ..
            }) => {
                let _ = key;
                None
            }
            Some(Frame::Mapping { path, key, .. }) => {
                let path = path.key(&key.take().unwrap_or_default());
                Some(path)
            }
            Some(Frame::Sequence { path, next }) => {
                let path = path.index(*next);
                *next += 1;
                self.positions.entry(path.clone()).or_insert(position);
                Some(path)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) if self.node_path(mark).is_none() => {
                // A key: remember its position for the value that follows.
                if let Some(Frame::Mapping { path, key, seen }) = self.stack.last_mut() {
                    let position = (mark.line(), mark.col() + 1);
                    let child = path.key(&text);
                    if let Some(first) = seen.get(&text) {
                        self.duplicates.push(Duplicate {
                            path: child.clone(),
                            at: position,
                            first: *first,
                        });
                    } else {
                        seen.insert(text.clone(), position);
                    }
                    self.positions.entry(child).or_insert(position);
                    *key = Some(text);
                }
            }
            Event::Alias(_) => {
                let _ = self.node_path(mark);
            }
            Event::MappingStart(..) => {
                // A mapping used as a key has no values path; track it under a placeholder.
                let path = self
                    .node_path(mark)
                    .unwrap_or_else(|| ValuesPath::root().key("?"));
                self.positions
                    .entry(path.clone())
                    .or_insert((mark.line(), mark.col() + 1));
                self.stack.push(Frame::Mapping {
                    path,
                    key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = self
                    .node_path(mark)
                    .unwrap_or_else(|| ValuesPath::root().key("?"));
                self.positions
                    .entry(path.clone())
                    .or_insert((mark.line(), mark.col() + 1));
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_list_items() {
        let text = "a:\n  b: 1\n  c:\n    - x\n    - y: 2\nd: [1, 2]\n";
        let map = LineMap::of(text);
        let p = |s: &str| ValuesPath::parse(s).unwrap();
        assert_eq!(map.find(&p("a")), Some((1, 1)));
        assert_eq!(map.find(&p("a.b")), Some((2, 3)));
        assert_eq!(map.find(&p("a.c[0]")), Some((4, 7)));
        assert_eq!(map.find(&p("a.c[1].y")), Some((5, 7)));
        assert_eq!(map.find(&p("d")), Some((6, 1)));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(map.find(&p("a.b.zz")), Some((2, 3)));
    }

    #[test]
    fn duplicate_keys_name_both_positions() {
        let text = "api:\n  replicas: 1\n  replicas: 2\nx: {a: 1, a: 2}\napi: {}\n---\nb: 1\n";
        let problems: Vec<String> = LineMap::duplicate_keys(text, "values.yaml")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("duplicate key `replicas` (values.yaml:3:3)")
                && problems[0].contains("`api.replicas` is first set at values.yaml:2:3"),
            "{problems:#?}"
        );
        assert!(problems[1].contains("(values.yaml:4:11)"), "{problems:#?}");
        assert!(problems[2].contains("`api` is first set at values.yaml:1:1"));
        assert!(LineMap::duplicate_keys("a: [1, 1]\nb: {c: 1}\n", "v").is_empty());
        assert!(LineMap::duplicate_keys("a: [1\n", "v").is_empty());
    }
}
