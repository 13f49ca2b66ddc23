//! Common Expression Language over Kubernetes objects: how a bundle declares what plane must know
//! of its own kinds, evaluated as Flux's `healthCheckExprs` are — the object's top-level fields
//! (`metadata`, `spec`, `status`, ...) are the variables, `metadata`, `spec` and `status` an
//! empty map when the object has none.
//!
//! The environment is CEL's standard library with optional values (`status.?phase.orValue('')`)
//! and cel-go's strings extension (`join`, `lowerAscii`, ...), plus `list.sum()` as Kubernetes'
//! CEL library has it. Integers are `int`, as Kubernetes reads them. An expression is bounded
//! when it is compiled: its length, and comprehensions nested in a comprehension's body.

use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::objects::{Key, Map, OptionalValue};
use cel::{Context, Env, Program, Value as CelValue};
use serde_json::Value;

/// The longest expression a bundle may declare.
pub const MAX_LENGTH: usize = 8 * 1024;

/// How deep comprehensions (`exists`, `map`, `filter`, ...) may nest inside one another's bodies:
/// each level multiplies the work by the length of a list.
pub const MAX_NESTING: usize = 2;

/// The variables every evaluation binds, empty when the object lacks them.
const ALWAYS_BOUND: [&str; 3] = ["metadata", "spec", "status"];

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Registering a known extension on a fresh environment cannot clash.
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

/// A compiled expression, with its text for messages.
#[derive(Clone)]
pub struct Expression {
    text: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Expression {}

impl TryFrom<String> for Expression {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::compile(&text)
    }
}

impl From<Expression> for String {
    fn from(expression: Expression) -> Self {
        expression.text
    }
}

impl serde::Serialize for Expression {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Expression {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::compile(&text).map_err(serde::de::Error::custom)
    }
}

/// Named values computed before an expression (`let:` in addon.yaml), each able to use the ones
/// before it.
pub type Bindings = [(String, Expression)];

impl Expression {
    /// Compiles `text`.
    ///
    /// # Errors
    /// The parser's message, or the bound it exceeds.
    pub fn compile(text: &str) -> Result<Self, String> {
        if text.len() > MAX_LENGTH {
            return Err(format!(
                "CEL expression of {} bytes; at most {MAX_LENGTH} are allowed",
                text.len()
            ));
        }
        let program = ENV.compile(text).map_err(|err| {
            format!(
                "invalid CEL `{}`: {}",
                short(text),
                one_line(&err.to_string())
            )
        })?;
        let nesting = nesting(program.expression());
        if nesting > MAX_NESTING {
            return Err(format!(
                "CEL `{}` nests comprehensions {nesting} deep; at most {MAX_NESTING} are allowed",
                short(text)
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            program: Arc::new(program),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its syntax tree, macros expanded (`exists`, `map`, ... are comprehensions), for what
    /// translates it for another engine.
    pub fn ast(&self) -> &IdedExpr {
        self.program.expression()
    }

    /// The variables it reads (fields of the object, bindings, comprehension variables).
    pub fn variables(&self) -> Vec<String> {
        self.program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Evaluates to a boolean over `object`.
    ///
    /// # Errors
    /// An evaluation error (a field the object lacks, a wrong type), or a result that is not a
    /// boolean.
    pub fn is_true(&self, object: &Value, bindings: &Bindings) -> Result<bool, String> {
        match self.evaluate(object, bindings)? {
            CelValue::Bool(b) => Ok(b),
            other => Err(format!(
                "`{}` is {}, not a boolean",
                self.text,
                kind(&other)
            )),
        }
    }

    /// Evaluates to text over `object` (a number or boolean is written as text).
    ///
    /// # Errors
    /// An evaluation error, or a result that is not a scalar.
    pub fn text_of(&self, object: &Value, bindings: &Bindings) -> Result<String, String> {
        match to_json(&self.evaluate(object, bindings)?) {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "`{}` is {}, not text",
                self.text,
                match other {
                    Value::Null => "null",
                    Value::Array(_) => "a list",
                    _ => "a map",
                }
            )),
        }
    }

    /// Evaluates to JSON over `object`; an empty optional is `null`.
    ///
    /// # Errors
    /// An evaluation error.
    pub fn json_of(&self, object: &Value, bindings: &Bindings) -> Result<Value, String> {
        Ok(to_json(&self.evaluate(object, bindings)?))
    }

    fn evaluate(&self, object: &Value, bindings: &Bindings) -> Result<CelValue, String> {
        let mut context = Context::with_env(Arc::clone(&ENV));
        context
            .add_function("sum", sum)
            .map_err(|err| err.to_string())?;
        let empty = Value::Object(serde_json::Map::new());
        if let Some(fields) = object.as_object() {
            for (key, value) in fields {
                context.add_variable_from_value(key.clone(), to_cel(value));
            }
        }
        for name in ALWAYS_BOUND {
            if object.get(name).is_none_or(Value::is_null) {
                context.add_variable_from_value(name, to_cel(&empty));
            }
        }
        for (name, expression) in bindings {
            let value = expression
                .program
                .execute(&context)
                .map_err(|err| format!("`{name}`: {err}"))?;
            context.add_variable_from_value(name.clone(), value);
        }
        self.program
            .execute(&context)
            .map_err(|err| format!("`{}`: {err}", short(&self.text)))
    }
}

/// JSON as CEL reads it: integers that fit are `int`, as Kubernetes' CEL has them.
pub fn to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => CelValue::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

/// A CEL value as JSON: an empty optional is `null`, an optional its value; what JSON cannot hold
/// (bytes, types, functions) is its debug text.
pub fn to_json(value: &CelValue) -> Value {
    match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::List(items) => Value::Array(items.iter().map(to_json).collect()),
        CelValue::Map(map) => Value::Object(
            map.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        other => match <&OptionalValue>::try_from(other) {
            Ok(optional) => optional.value().map_or(Value::Null, to_json),
            Err(_) => Value::String(format!("{other:?}")),
        },
    }
}

fn kind(value: &CelValue) -> &'static str {
    match to_json(value) {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// `list.sum()`: integers add up as integers, anything with a float as a float; other items are
/// an error, as in Kubernetes' CEL library.
fn sum(
    cel::extractors::This(list): cel::extractors::This<Arc<Vec<CelValue>>>,
) -> cel::ResolveResult {
    let mut whole: i64 = 0;
    let mut float: Option<f64> = None;
    for item in list.iter() {
        match item {
            CelValue::Int(i) => {
                whole = whole
                    .checked_add(*i)
                    .ok_or_else(|| cel::ExecutionError::function_error("sum", "overflow"))?;
            }
            CelValue::UInt(u) => {
                let u = i64::try_from(*u)
                    .map_err(|_| cel::ExecutionError::function_error("sum", "overflow"))?;
                whole = whole
                    .checked_add(u)
                    .ok_or_else(|| cel::ExecutionError::function_error("sum", "overflow"))?;
            }
            CelValue::Float(f) => *float.get_or_insert(0.0) += f,
            other => {
                return Err(cel::ExecutionError::function_error(
                    "sum",
                    format!("cannot add {}", kind(other)),
                ));
            }
        }
    }
    Ok(match float {
        #[allow(clippy::cast_precision_loss, reason = "a sum with a float is a float")]
        Some(f) => CelValue::Float(f + whole as f64),
        None => CelValue::Int(whole),
    })
}

/// How deep comprehensions nest inside the bodies of others (a comprehension over the result of
/// another is not nested: its work adds, it does not multiply).
fn nesting(expr: &IdedExpr) -> usize {
    match &expr.expr {
        Expr::Comprehension(c) => {
            let body = nesting(&c.loop_step)
                .max(nesting(&c.loop_cond))
                .max(nesting(&c.result));
            nesting(&c.iter_range)
                .max(nesting(&c.accu_init))
                .max(body + 1)
        }
        Expr::Call(call) => call
            .target
            .iter()
            .map(|t| nesting(t))
            .chain(call.args.iter().map(nesting))
            .max()
            .unwrap_or(0),
        Expr::List(list) => list.elements.iter().map(nesting).max().unwrap_or(0),
        Expr::Map(map) => entries_nesting(&map.entries),
        Expr::Struct(s) => entries_nesting(&s.entries),
        Expr::Select(select) => nesting(&select.operand),
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 0,
    }
}

/// The deepest nesting among a map's or a struct's entries.
fn entries_nesting(entries: &[cel::common::ast::IdedEntryExpr]) -> usize {
    entries
        .iter()
        .map(|e| match &e.expr {
            EntryExpr::MapEntry(m) => nesting(&m.key).max(nesting(&m.value)),
            EntryExpr::StructField(f) => nesting(&f.value),
        })
        .max()
        .unwrap_or(0)
}

/// An expression in a message: its first 80 characters on one line.
pub(crate) fn short(text: &str) -> String {
    let flat = one_line(text);
    if flat.chars().count() > 80 {
        format!("{}...", flat.chars().take(80).collect::<String>())
    } else {
        flat
    }
}

pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(text: &str) -> Expression {
        Expression::compile(text).unwrap()
    }

    #[test]
    fn expressions_read_the_object_as_flux_does() {
        let object = json!({"metadata": {"generation": 3},
            "spec": {"groups": [{"replicas": 1, "min": 2}, {"replicas": 3, "suspend": true}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let ready = compile("status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')");
        assert_eq!(ready.is_true(&object, &[]), Ok(true));
        let wanted = compile(
            "spec.groups.filter(g, !g.?suspend.orValue(false)).map(g, g.replicas < g.min ? g.min : g.replicas).sum() * 2",
        );
        assert_eq!(wanted.text_of(&object, &[]), Ok("4".into()));
        let missing = compile("status.phase == 'Running'");
        assert!(missing.is_true(&object, &[]).is_err());
        let reason = compile("'generation ' + string(metadata.generation)");
        assert_eq!(reason.text_of(&object, &[]), Ok("generation 3".into()));
        assert!(ready.text_of(&object, &[]).is_ok());
        let joined = compile("['a', '', 'b'].filter(s, s != '').join(': ')");
        assert_eq!(joined.text_of(&object, &[]), Ok("a: b".into()));
        // An object without a status still has one to ask.
        let fresh = json!({"kind": "Widget"});
        assert_eq!(
            compile("size(status) == 0 && kind == 'Widget'").is_true(&fresh, &[]),
            Ok(true)
        );
        assert_eq!(
            compile("status.?phase").json_of(&fresh, &[]),
            Ok(Value::Null)
        );
        assert_eq!(
            compile("metadata.?generation").json_of(&object, &[]),
            Ok(json!(3))
        );
    }

    #[test]
    fn bindings_are_computed_in_order() {
        let object = json!({"spec": {"replicas": 2}});
        let bindings = vec![
            ("wanted".to_owned(), compile("spec.replicas")),
            ("twice".to_owned(), compile("wanted * 2")),
        ];
        assert_eq!(
            compile("twice + 1").text_of(&object, &bindings),
            Ok("5".into())
        );
    }

    #[test]
    fn hostile_expressions_are_refused_when_compiled() {
        assert!(
            Expression::compile("status.(")
                .unwrap_err()
                .contains("invalid CEL")
        );
        let deep = "[1].exists(a, [1].exists(b, [1].exists(c, true)))";
        assert!(Expression::compile(deep).unwrap_err().contains("3 deep"));
        assert!(Expression::compile("[1].exists(a, [1].exists(b, true))").is_ok());
        // Chained comprehensions add up, they do not nest.
        assert!(Expression::compile("[1].filter(a, true).map(b, b).exists(c, true)").is_ok());
        assert!(Expression::compile(&"1 + ".repeat(3000)).is_err());
        let parens = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(Expression::compile(&parens).is_err());
        assert!(compile("[1, 'a'].sum()").is_true(&json!({}), &[]).is_err());
    }
}
