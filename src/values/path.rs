//! Values paths such as `web.autoscaler.minReplicas` or `workers[0].replicas`.

use std::fmt;

/// One step of a values path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the values tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValuesPath(pub Vec<Seg>);

impl ValuesPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    pub fn starts_with(&self, prefix: &Self) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The value at this path inside `value`, if any.
    pub fn find_in<'a>(&self, value: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        use serde_json::Value;
        let mut node = value;
        for seg in &self.0 {
            node = match (seg, node) {
                (Seg::Key(key), Value::Object(map)) => map.get(key)?,
                (Seg::Index(index), Value::Array(list)) => list.get(*index)?,
                _ => return None,
            };
        }
        Some(node)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path one step up; the root is its own parent.
    #[must_use]
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        Self(segs)
    }

    /// Parses `a.b[0].c`; a backslash escapes a dot or bracket inside a key (`labels.app\.kubernetes\.io/name`).
    ///
    /// # Errors
    /// A phrase saying what is malformed.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the path is empty".into());
        }
        let mut segs = Vec::new();
        let mut key = String::new();
        let mut chars = text.chars().peekable();
        // Whether the previous segment ended with `]`, so a `.` or `[` may follow without a key.
        let mut after_index = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => key.push(escaped),
                    None => return Err("the path ends with a lone backslash".into()),
                },
                '.' => {
                    if key.is_empty() && !after_index {
                        return Err("the path has an empty key (two dots, or a leading dot)".into());
                    }
                    if !key.is_empty() {
                        segs.push(Seg::Key(std::mem::take(&mut key)));
                    }
                    after_index = false;
                    if chars.peek().is_none() {
                        return Err("the path ends with a dot".into());
                    }
                }
                '[' => {
                    if !key.is_empty() {
                        segs.push(Seg::Key(std::mem::take(&mut key)));
                    } else if segs.is_empty() {
                        return Err(
                            "the path starts with an index; it must start with a key".into()
                        );
                    }
                    let mut digits = String::new();
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some(d) => digits.push(d),
                            None => return Err("an index is not closed with `]`".into()),
                        }
                    }
                    let index = digits.parse::<usize>().map_err(|_| {
                        format!("`[{digits}]` is not a list index (a number from 0)")
                    })?;
                    segs.push(Seg::Index(index));
                    after_index = true;
                    if let Some(&next) = chars.peek()
                        && next != '.'
                        && next != '['
                    {
                        return Err(format!(
                            "expected `.` or `[` after `[{index}]`, found `{next}`"
                        ));
                    }
                }
                ']' => return Err("`]` without a matching `[`".into()),
                c => {
                    key.push(c);
                    after_index = false;
                }
            }
        }
        if !key.is_empty() {
            segs.push(Seg::Key(key));
        }
        Ok(Self(segs))
    }
}

impl fmt::Display for ValuesPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(&key.replace('.', "\\."))?;
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_indices_and_escapes() {
        let path = ValuesPath::parse(r"a.b[2].c\.d").unwrap();
        assert_eq!(
            path.0,
            vec![
                Seg::Key("a".into()),
                Seg::Key("b".into()),
                Seg::Index(2),
                Seg::Key("c.d".into())
            ]
        );
        assert_eq!(path.to_string(), r"a.b[2].c\.d");
        assert_eq!(ValuesPath::parse("a[0][1]").unwrap().to_string(), "a[0][1]");
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "", ".a", "a..b", "a.", "a[x]", "a[1", "[0]", "a]b", "a[0]b", "a\\",
        ] {
            assert!(ValuesPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
