//! The line and column of every key and list item in a YAML document, for value origins.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::ValuesPath;

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
    },
    Sequence {
        path: ValuesPath,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<ValuesPath, (usize, usize)>,
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
            Some(Frame::Mapping { path, key }) => {
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
                if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                    let child = path.key(&text);
                    self.positions
                        .entry(child)
                        .or_insert((mark.line(), mark.col() + 1));
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
                self.stack.push(Frame::Mapping { path, key: None });
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
}
