//! The readiness a bundle declares in CEL, as the Lua health check Argo CD runs for its kind.
//!
//! Argo CD reads the health of a custom kind from a Lua 5.1 script in argocd-cm
//! (`resource.customizations.health.<group>_<Kind>`): the script sees the live object as the
//! global `obj` and returns `{status = ..., message = ...}`. The script made here gives plane's
//! own verdict (`kube::readiness`): ready is `Healthy`, failed `Degraded`, anything else
//! `Progressing`, with the same message. Each expression is translated from its syntax tree, as
//! CEL evaluates it: ints and doubles kept apart, `&&` and `||` passing over an error that the
//! other operand decides, a missing field an error unless tested with `has()` or read with `.?`,
//! errors worded as the `cel` crate words them. A runtime of helpers (`cel.*`) goes with it, cut
//! to those the kind's expressions reach. Argo CD opens neither `string` nor `math` to a health
//! check: the runtime needs neither, nor `require`.
//!
//! What Argo CD cannot tell the script, the translation cannot honour: a JSON `1.0` arrives as
//! `1`, an int; a `null` arrives as nothing; an empty `[]` and `{}` are the same empty table;
//! integers beyond 2^53 lose digits. A construct without a translation (`matches`, bytes,
//! unsigned ints, types as values, ...) is refused by name, never translated approximately.

use std::collections::BTreeSet;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

use crate::bundle::declared::{Generation, KindRule, group_of};
use crate::cel::Expression;

/// The argocd-cm entries that make Argo CD read each kind's health as plane does: for every kind
/// with a declared readiness, `resource.customizations.health.<group>_<Kind>` (`<Kind>` alone in
/// the core group) and its script.
///
/// # Errors
/// The first expression with a construct that has no Lua translation.
pub fn health_customizations(rules: &[KindRule]) -> Result<Vec<(String, String)>, String> {
    rules
        .iter()
        .filter(|rule| rule.readiness.is_some())
        .map(|rule| {
            let group = group_of(&rule.api_version);
            let key = if group.is_empty() {
                format!("resource.customizations.health.{}", rule.kind)
            } else {
                format!("resource.customizations.health.{group}_{}", rule.kind)
            };
            Ok((key, health_script(rule)?))
        })
        .collect()
}

/// The Lua health check of one kind: the runtime it needs, its `let` values, and the verdict of
/// its declared readiness.
///
/// # Errors
/// A kind without a declared readiness, or an expression with a construct that has no Lua
/// translation, named.
pub fn health_script(rule: &KindRule) -> Result<String, String> {
    let Some(readiness) = &rule.readiness else {
        return Err(format!(
            "{} ({}) declares no readiness to translate for Argo CD",
            rule.kind, rule.api_version
        ));
    };
    let mut translator = Translator::new(rule);
    let mut bindings = Vec::new();
    for (name, expression) in rule.bindings.iter() {
        let body = translator
            .body(expression.ast())
            .map_err(|why| refusal(rule, &format!("`let` {name}"), expression, &why))?;
        bindings.push(Lua::Commented(
            format!("{name}: {}", one_line(expression.text())),
            Box::new(Lua::Table(vec![
                Lua::string(name),
                Lua::Function(Vec::new(), body),
            ])),
        ));
        translator.bound.insert(name.to_owned());
    }
    let generation = match readiness.observed_generation {
        Generation::Wait => "wait",
        Generation::Ignore => "ignore",
    };
    let mut fields = vec![Lua::named("generation", Lua::string(generation))];
    let expressions = [
        ("in_progress", "inProgress", readiness.in_progress.as_ref()),
        ("failed", "failed", readiness.failed.as_ref()),
        ("current", "current", Some(&readiness.current)),
        ("message", "message", readiness.message.as_ref()),
    ];
    for (key, field, expression) in expressions {
        let Some(expression) = expression else {
            continue;
        };
        let body = translator
            .body(expression.ast())
            .map_err(|why| refusal(rule, &format!("readiness {field}"), expression, &why))?;
        fields.push(Lua::named(key, check(expression, body)));
    }
    let mut code = String::new();
    code.push_str(
        "-- The object's fields as CEL reads them: `metadata`, `spec` and `status` are maps even\n\
         -- when it has none.\nlocal v = cel.variables(obj)\n\n",
    );
    code.push_str("-- The `let` values, each after those it uses.\nlocal bindings = ");
    code.push_str(&Lua::Table(bindings).layout(0, 17));
    code.push_str("\n\nreturn cel.health(obj, v, bindings, ");
    code.push_str(&Lua::Table(fields).layout(0, 36));
    code.push_str(")\n");
    Ok(format!("{}\n{}\n{code}", header(rule), runtime_for(&code)))
}

/// The comment that opens a script.
fn header(rule: &KindRule) -> String {
    format!(
        "-- Argo CD health check of {} ({}), generated by plane from the readiness its bundle\n\
         -- declares in CEL (addon.yaml `kinds:`). It gives plane's verdict and message: ready is\n\
         -- Healthy, failed is Degraded, anything else Progressing. The `cel` helpers evaluate CEL as\n\
         -- plane does, without the `string` and `math` libraries, which Argo CD does not open to\n\
         -- health checks. Regenerate it rather than edit it.\n",
        rule.kind, rule.api_version
    )
}

/// What the runtime reads of one readiness expression: its text for messages, and its value.
fn check(expression: &Expression, body: Vec<Stmt>) -> Lua {
    let mut entries = vec![Lua::named("text", Lua::string(expression.text()))];
    let short = short(expression.text());
    if short != expression.text() {
        entries.push(Lua::named("short", Lua::string(&short)));
    }
    entries.push(Lua::named("eval", Lua::Function(Vec::new(), body)));
    Lua::Table(entries)
}

fn refusal(rule: &KindRule, place: &str, expression: &Expression, why: &str) -> String {
    format!(
        "{} ({}): {place} `{}` uses {why}, which has no Lua translation for Argo CD",
        rule.kind,
        rule.api_version,
        short(expression.text())
    )
}

// An expression in a message as plane's CEL shows it (`crate::cel` words its errors so; the
// translation must too).
use crate::cel::{one_line, short};

/// How wide a line of the generated Lua may grow before it is broken.
const WIDTH: usize = 100;

/// Lua code as a tree, laid out on lines when it is written.
enum Lua {
    /// A name, a literal or a field: `v.status`, `"Ready"`, `0`.
    Atom(String),
    /// `head(arg, ...)`.
    Call(String, Vec<Lua>),
    /// `{ item, ... }`.
    Table(Vec<Lua>),
    /// `name = value`, in a table.
    Named(String, Box<Lua>),
    /// An item of a table, a comment line above it.
    Commented(String, Box<Lua>),
    /// `function(params) ... end`.
    Function(Vec<String>, Vec<Stmt>),
    /// `(function(params) ... end)(args)`: the arguments evaluated before the body.
    Apply(Box<Lua>, Vec<Lua>),
}

/// A statement in a function's body.
enum Stmt {
    Return(Lua),
    /// `if c then ... elseif c then ... else ... end`.
    If(Vec<(Lua, Vec<Stmt>)>, Vec<Stmt>),
}

impl Lua {
    fn call(head: &str, args: Vec<Lua>) -> Self {
        Self::Call(head.to_owned(), args)
    }

    fn string(text: &str) -> Self {
        Self::Atom(lua_string(text))
    }

    fn named(name: &str, value: Lua) -> Self {
        Self::Named(name.to_owned(), Box::new(value))
    }

    /// `function() <body> end`.
    fn returning(body: Vec<Stmt>) -> Self {
        Self::Function(Vec::new(), body)
    }

    /// On one line, when it can be.
    fn flat(&self) -> Option<String> {
        match self {
            Self::Atom(text) => Some(text.clone()),
            Self::Call(head, args) => Some(format!("{head}({})", flat_list(args)?)),
            Self::Table(items) if items.is_empty() => Some("{}".to_owned()),
            Self::Table(items) => Some(format!("{{ {} }}", flat_list(items)?)),
            Self::Named(name, value) => Some(format!("{name} = {}", value.flat()?)),
            Self::Commented(..) => None,
            Self::Function(params, body) => match body.as_slice() {
                [Stmt::Return(value)] => Some(format!(
                    "function({}) return {} end",
                    params.join(", "),
                    value.flat()?
                )),
                _ => None,
            },
            Self::Apply(function, args) => {
                Some(format!("({})({})", function.flat()?, flat_list(args)?))
            }
        }
    }

    /// Written from `column` on a line indented by `indent`, broken where it does not fit.
    fn layout(&self, indent: usize, column: usize) -> String {
        if let Some(flat) = self.flat()
            && column + flat.len() <= WIDTH
        {
            return flat;
        }
        match self {
            Self::Atom(text) => text.clone(),
            Self::Call(head, args) => {
                // A function or a table last opens on the call's line and closes with it.
                if let Some((last, rest)) = args.split_last()
                    && let Some(before) = flat_list(rest)
                {
                    let before = if rest.is_empty() {
                        String::new()
                    } else {
                        before + ", "
                    };
                    let opening = match last {
                        Self::Function(params, _) => {
                            Some(format!("{head}({before}function({})", params.join(", ")))
                        }
                        Self::Table(_) => Some(format!("{head}({before}{{")),
                        _ => None,
                    };
                    if let Some(opening) = opening
                        && column + opening.len() <= WIDTH
                    {
                        let inside = match last {
                            Self::Function(_, body) => {
                                format!("\n{}{}end", statements(body, indent + 2), pad(indent))
                            }
                            Self::Table(items) => broken_list(items, indent, true) + "}",
                            _ => String::new(),
                        };
                        return format!("{opening}{inside})");
                    }
                }
                format!("{head}({})", broken_list(args, indent, false))
            }
            Self::Table(items) => format!("{{{}}}", broken_list(items, indent, true)),
            Self::Named(name, value) => {
                format!("{name} = {}", value.layout(indent, column + name.len() + 3))
            }
            Self::Commented(comment, item) => {
                format!(
                    "-- {comment}\n{}{}",
                    pad(indent),
                    item.layout(indent, indent)
                )
            }
            Self::Function(params, body) => format!(
                "function({})\n{}{}end",
                params.join(", "),
                statements(body, indent + 2),
                pad(indent)
            ),
            Self::Apply(function, args) => format!(
                "({})({})",
                function.layout(indent, column + 1),
                flat_list(args).unwrap_or_else(|| broken_list(args, indent, false))
            ),
        }
    }
}

fn flat_list(items: &[Lua]) -> Option<String> {
    let items: Option<Vec<String>> = items.iter().map(Lua::flat).collect();
    Some(items?.join(", "))
}

/// Items one to a line, indented under the line that opens them.
fn broken_list(items: &[Lua], indent: usize, trailing_comma: bool) -> String {
    let inner = indent + 2;
    let mut out = String::from("\n");
    for (i, item) in items.iter().enumerate() {
        out.push_str(&pad(inner));
        out.push_str(&item.layout(inner, inner));
        if trailing_comma || i + 1 < items.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&pad(indent));
    out
}

fn statements(body: &[Stmt], indent: usize) -> String {
    body.iter().map(|stmt| stmt.layout(indent)).collect()
}

impl Stmt {
    fn layout(&self, indent: usize) -> String {
        match self {
            Self::Return(value) => format!(
                "{}return {}\n",
                pad(indent),
                value.layout(indent, indent + 7)
            ),
            Self::If(branches, otherwise) => {
                let mut out = String::new();
                for (i, (condition, body)) in branches.iter().enumerate() {
                    let keyword = if i == 0 { "if" } else { "elseif" };
                    out.push_str(&format!(
                        "{}{keyword} {} then\n{}",
                        pad(indent),
                        condition.layout(indent, indent + keyword.len() + 1),
                        statements(body, indent + 2)
                    ));
                }
                out.push_str(&format!(
                    "{}else\n{}{}end\n",
                    pad(indent),
                    statements(otherwise, indent + 2),
                    pad(indent)
                ));
                out
            }
        }
    }
}

fn pad(indent: usize) -> String {
    " ".repeat(indent)
}

/// A Lua string literal: printable text as it is, control characters escaped.
fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\{:03}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lua's reserved words: no local may take them.
const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// The names the generated code itself uses: a CEL variable may not shadow them.
const RESERVED: &[&str] = &["cel", "v", "obj"];

/// CEL's names of types: as a value, each is a type, which the translation does not have.
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "optional_type",
    "string",
    "type",
    "uint",
];

fn is_lua_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// A variable the runtime keeps in `v`: `v.status`, or `v["end"]`.
fn variable(name: &str) -> String {
    if is_lua_name(name) {
        format!("v.{name}")
    } else {
        format!("v[{}]", lua_string(name))
    }
}

/// Translates CEL's syntax trees of one kind into Lua.
struct Translator {
    /// The names comprehensions bind around the expression being translated, innermost last,
    /// with their Lua locals.
    scope: Vec<(String, String)>,
    /// The names `v` always holds: `metadata`, `spec`, `status` and the `let` values so far.
    bound: BTreeSet<String>,
    /// Every name the kind's expressions use: a Lua local made up for another may not take one.
    taken: BTreeSet<String>,
}

impl Translator {
    fn new(rule: &KindRule) -> Self {
        let mut taken: BTreeSet<String> = RESERVED.iter().map(|n| (*n).to_owned()).collect();
        let readiness = rule.readiness.iter().flat_map(|r| {
            [
                Some(&r.current),
                r.failed.as_ref(),
                r.in_progress.as_ref(),
                r.message.as_ref(),
            ]
        });
        for expression in rule
            .bindings
            .iter()
            .map(|(_, e)| e)
            .chain(readiness.flatten())
        {
            names(expression.ast(), &mut taken);
        }
        Self {
            scope: Vec::new(),
            bound: ["metadata", "spec", "status"]
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
            taken,
        }
    }

    /// A Lua local for the CEL name `name`: the name itself when Lua can take it, else one made
    /// from `fallback` that no CEL name of the kind takes.
    fn local(&self, name: &str, fallback: &str) -> String {
        if is_lua_name(name) && !RESERVED.contains(&name) {
            return name.to_owned();
        }
        let mut candidate: String = fallback
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if candidate.is_empty() {
            candidate.push('x');
        }
        while !is_lua_name(&candidate)
            || RESERVED.contains(&candidate.as_str())
            || self.taken.contains(&candidate)
        {
            candidate.push('_');
        }
        candidate
    }

    /// Binds `name` for what is translated until the matching `leave`; its Lua local.
    fn enter(&mut self, name: &str, fallback: &str) -> String {
        let local = self.local(name, fallback);
        self.scope.push((name.to_owned(), local.clone()));
        local
    }

    fn leave(&mut self) {
        self.scope.pop();
    }

    /// The body of a function returning the value of `e`: a conditional becomes an if chain.
    fn body(&mut self, e: &IdedExpr) -> Result<Vec<Stmt>, String> {
        let mut branches = Vec::new();
        let mut rest = e;
        while let Some([condition, yes, no]) = call_args(rest, "_?_:_") {
            let test = if is_boolean(condition) {
                self.expr(condition)?
            } else {
                Lua::call("cel.test", vec![self.expr(condition)?])
            };
            branches.push((test, self.body(yes)?));
            rest = no;
        }
        let last = vec![Stmt::Return(self.expr(rest)?)];
        if branches.is_empty() {
            return Ok(last);
        }
        Ok(vec![Stmt::If(branches, last)])
    }

    /// `e` as an operand evaluated only when needed: its value when evaluating it cannot fail,
    /// else a function that computes it.
    fn lazy(&mut self, e: &IdedExpr) -> Result<Lua, String> {
        if self.is_simple(e) {
            self.expr(e)
        } else {
            Ok(Lua::returning(self.body(e)?))
        }
    }

    /// Whether evaluating `e` cannot fail: a literal, a name always bound, a list of such, a
    /// field read with `.?` or an index with `[?]` of such, and `orValue` or `hasValue` of those.
    /// Its value may then be computed before it is needed.
    fn is_simple(&self, e: &IdedExpr) -> bool {
        match &e.expr {
            Expr::Literal(literal) => {
                !matches!(literal, LiteralValue::Bytes(_) | LiteralValue::UInt(_))
            }
            Expr::Ident(name) => {
                self.scope.iter().any(|(n, _)| n == name) || self.bound.contains(name)
            }
            Expr::List(list) => {
                list.optional_indices.is_empty()
                    && list.elements.iter().all(|item| self.is_simple(item))
            }
            Expr::Call(call) => match (call.func_name.as_str(), call.target.as_deref()) {
                ("_?._" | "_[?_]", None) => call.args.iter().all(|arg| self.is_simple(arg)),
                ("orValue" | "hasValue", Some(target)) => {
                    is_optional(target)
                        && self.is_simple(target)
                        && call.args.iter().all(|arg| self.is_simple(arg))
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn expr(&mut self, e: &IdedExpr) -> Result<Lua, String> {
        match &e.expr {
            Expr::Literal(literal) => literal_value(literal),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => {
                let operand = self.expr(&select.operand)?;
                let helper = if select.test { "cel.has" } else { "cel.select" };
                Ok(Lua::call(helper, vec![operand, Lua::string(&select.field)]))
            }
            Expr::Call(call) => self.call(e, call),
            Expr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return Err("optional list elements (`[?x]`)".to_owned());
                }
                let items = list
                    .elements
                    .iter()
                    .map(|item| self.expr(item))
                    .collect::<Result<_, _>>()?;
                Ok(Lua::call("cel.list", vec![Lua::Table(items)]))
            }
            Expr::Map(map) => {
                let mut entries = Vec::new();
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(entry) if !entry.optional => {
                            entries.push(Lua::Table(vec![
                                self.expr(&entry.key)?,
                                self.expr(&entry.value)?,
                            ]));
                        }
                        EntryExpr::MapEntry(_) => {
                            return Err("optional map entries (`{?k: v}`)".to_owned());
                        }
                        EntryExpr::StructField(_) => {
                            return Err("message fields".to_owned());
                        }
                    }
                }
                Ok(Lua::call("cel.map", vec![Lua::Table(entries)]))
            }
            Expr::Comprehension(comprehension) => self.comprehension(comprehension),
            Expr::Struct(_) => Err("message construction".to_owned()),
            Expr::Unspecified => Err("an unspecified expression".to_owned()),
        }
    }

    fn ident(&self, name: &str) -> Result<Lua, String> {
        if let Some((_, local)) = self.scope.iter().rev().find(|(n, _)| n == name) {
            return Ok(Lua::Atom(local.clone()));
        }
        if self.bound.contains(name) {
            return Ok(Lua::Atom(variable(name)));
        }
        if TYPE_NAMES.contains(&name) {
            return Err(format!("the type `{name}` as a value"));
        }
        Ok(Lua::call(
            "cel.var",
            vec![Lua::Atom("v".to_owned()), Lua::string(name)],
        ))
    }

    fn call(&mut self, e: &IdedExpr, call: &CallExpr) -> Result<Lua, String> {
        let name = call.func_name.as_str();
        if let Some(target) = &call.target {
            if let Expr::Ident(namespace) = &target.expr
                && namespace == "optional"
            {
                match (name, call.args.as_slice()) {
                    ("of", [value]) => return Ok(Lua::call("cel.some", vec![self.expr(value)?])),
                    ("none", []) => return Ok(Lua::call("cel.none", Vec::new())),
                    ("ofNonZeroValue", [value]) => {
                        return Ok(Lua::call("cel.of_non_zero", vec![self.expr(value)?]));
                    }
                    _ => {}
                }
            }
            return self.method(name, target, &call.args);
        }
        let binary = |helper: &str| (helper.to_owned(), 2);
        let (helper, arity) = match name {
            "_&&_" => return self.logic(e, name, "cel.and_"),
            "_||_" => return self.logic(e, name, "cel.or_"),
            "_?_:_" => {
                let [condition, yes, no] = call.args.as_slice() else {
                    return Err("a malformed conditional".to_owned());
                };
                return Ok(Lua::call(
                    "cel.ternary",
                    vec![
                        self.expr(condition)?,
                        Lua::returning(self.body(yes)?),
                        Lua::returning(self.body(no)?),
                    ],
                ));
            }
            "@not_strictly_false" => {
                let [value] = call.args.as_slice() else {
                    return Err("a malformed comprehension".to_owned());
                };
                return Ok(Lua::call("cel.not_strictly_false", vec![self.lazy(value)?]));
            }
            "_[_]" | "_[?_]" => {
                let [value, index] = call.args.as_slice() else {
                    return Err("a malformed index".to_owned());
                };
                let helper = if name == "_[_]" {
                    "cel.index"
                } else {
                    "cel.opt_index"
                };
                return Ok(Lua::call(
                    helper,
                    vec![self.expr(value)?, self.lazy(index)?],
                ));
            }
            "_?._" => {
                let [value, field] = call.args.as_slice() else {
                    return Err("a malformed optional field".to_owned());
                };
                let Expr::Literal(LiteralValue::String(field)) = &field.expr else {
                    return Err("an optional field that is not a name".to_owned());
                };
                return Ok(Lua::call(
                    "cel.opt_select",
                    vec![self.expr(value)?, Lua::string(field.inner())],
                ));
            }
            "dyn" => {
                let [value] = call.args.as_slice() else {
                    return Err("`dyn` with other than one argument".to_owned());
                };
                return self.expr(value);
            }
            "!_" => ("cel.not_".to_owned(), 1),
            "-_" => ("cel.neg".to_owned(), 1),
            "_==_" => binary("cel.eq"),
            "_!=_" => binary("cel.ne"),
            "_<_" => binary("cel.lt"),
            "_<=_" => binary("cel.le"),
            "_>_" => binary("cel.gt"),
            "_>=_" => binary("cel.ge"),
            "_+_" => binary("cel.add"),
            "_-_" => binary("cel.sub"),
            "_*_" => binary("cel.mul"),
            "_/_" => binary("cel.div"),
            "_%_" => binary("cel.mod"),
            "@in" => binary("cel.in_"),
            "size" => ("cel.size".to_owned(), 1),
            "string" => ("cel.string".to_owned(), 1),
            "int" => ("cel.int".to_owned(), 1),
            "double" => ("cel.double".to_owned(), 1),
            "sum" => ("cel.sum".to_owned(), 1),
            other => return Err(format!("the function `{other}`")),
        };
        if call.args.len() != arity {
            return Err(format!("`{name}` with {} arguments", call.args.len()));
        }
        let args = call
            .args
            .iter()
            .map(|arg| self.expr(arg))
            .collect::<Result<_, _>>()?;
        Ok(Lua::Call(helper, args))
    }

    /// `target.name(args)`. CEL evaluates the arguments before the receiver: when both may fail,
    /// the arguments are passed into a function that then evaluates the receiver.
    fn method(&mut self, name: &str, target: &IdedExpr, args: &[IdedExpr]) -> Result<Lua, String> {
        let helper = match (name, args.len()) {
            ("orValue", 1) => "cel.or_value",
            ("hasValue", 0) => "cel.has_value",
            ("value", 0) => "cel.value",
            ("or", 1) => "cel.or_optional",
            ("size", 0) => "cel.size_method",
            ("sum", 0) => "cel.sum",
            ("contains", 1) => "cel.contains",
            ("startsWith", 1) => "cel.starts_with",
            ("endsWith", 1) => "cel.ends_with",
            ("join", 0 | 1) => "cel.join",
            ("lowerAscii", 0) => "cel.lower_ascii",
            ("upperAscii", 0) => "cel.upper_ascii",
            ("split", 1) => "cel.split",
            ("replace", 2) => "cel.replace",
            (name, n) => return Err(format!("the method `{name}` with {n} arguments")),
        };
        if self.is_simple(target) || args.iter().all(|arg| self.is_simple(arg)) {
            let mut all = vec![self.expr(target)?];
            for arg in args {
                all.push(self.expr(arg)?);
            }
            return Ok(Lua::call(helper, all));
        }
        let values = args
            .iter()
            .map(|arg| self.expr(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<String> = (0..args.len())
            .map(|i| self.local("", &format!("arg{}", i + 1)))
            .collect();
        let mut all = vec![self.expr(target)?];
        all.extend(params.iter().map(|p| Lua::Atom(p.clone())));
        Ok(Lua::Apply(
            Box::new(Lua::Function(
                params,
                vec![Stmt::Return(Lua::call(helper, all))],
            )),
            values,
        ))
    }

    /// A chain `a && b && c`, which CEL reads as `(a && b) && c`: one call, its operands in
    /// order.
    fn logic(&mut self, e: &IdedExpr, operator: &str, helper: &str) -> Result<Lua, String> {
        let mut operands = Vec::new();
        let mut left = e;
        while let Some([l, r]) = call_args(left, operator) {
            operands.push(r);
            left = l;
        }
        operands.push(left);
        operands.reverse();
        let operands = operands
            .into_iter()
            .map(|operand| self.lazy(operand))
            .collect::<Result<_, _>>()?;
        Ok(Lua::call(helper, operands))
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Result<Lua, String> {
        if c.iter_var2.is_some() {
            return Err("a comprehension over two variables".to_owned());
        }
        if let Some(shape) = Shape::of(c) {
            let range = self.expr(&c.iter_range)?;
            let item = self.enter(&c.iter_var, &c.iter_var);
            let lua = match shape {
                Shape::Exists(p) => Lua::call("cel.exists", vec![range, self.function(&item, p)?]),
                Shape::All(p) => Lua::call("cel.all", vec![range, self.function(&item, p)?]),
                Shape::ExistsOne(p) => {
                    Lua::call("cel.exists_one", vec![range, self.function(&item, p)?])
                }
                Shape::Filter(p) => Lua::call("cel.filter", vec![range, self.function(&item, p)?]),
                Shape::Map(f, None) => {
                    Lua::call("cel.map_items", vec![range, self.function(&item, f)?])
                }
                Shape::Map(f, Some(p)) => Lua::call(
                    "cel.map_items",
                    vec![range, self.function(&item, f)?, self.function(&item, p)?],
                ),
            };
            self.leave();
            return Ok(lua);
        }
        if free_in(&c.loop_cond, &c.iter_var) || free_in(&c.result, &c.iter_var) {
            return Err(
                "a comprehension whose condition or result reads its iteration variable".to_owned(),
            );
        }
        let init = self.expr(&c.accu_init)?;
        let range = self.expr(&c.iter_range)?;
        let accu = self.enter(&c.accu_var, "acc");
        let condition = Lua::Function(vec![accu.clone()], self.body(&c.loop_cond)?);
        let item = self.enter(&c.iter_var, &c.iter_var);
        let step = Lua::Function(vec![item, accu.clone()], self.body(&c.loop_step)?);
        self.leave();
        let result = Lua::Function(vec![accu], self.body(&c.result)?);
        self.leave();
        let logic = match &c.loop_step.expr {
            Expr::Call(call)
                if call.target.is_none()
                    && call.args.first().is_some_and(|a| is_ident(a, &c.accu_var)) =>
            {
                match call.func_name.as_str() {
                    "_&&_" => "\"and\"",
                    "_||_" => "\"or\"",
                    _ => "nil",
                }
            }
            _ => "nil",
        };
        Ok(Lua::call(
            "cel.fold",
            vec![
                init,
                range,
                condition,
                step,
                result,
                Lua::Atom(logic.to_owned()),
            ],
        ))
    }

    /// `function(item) return <e> end`, `item` already bound.
    fn function(&mut self, item: &str, e: &IdedExpr) -> Result<Lua, String> {
        Ok(Lua::Function(vec![item.to_owned()], self.body(e)?))
    }
}

/// The macros CEL expands into comprehensions, recognised to call a helper that reads as the
/// macro did.
enum Shape<'a> {
    Exists(&'a IdedExpr),
    All(&'a IdedExpr),
    ExistsOne(&'a IdedExpr),
    Filter(&'a IdedExpr),
    /// The transform, and the predicate of `map(x, p, f)`.
    Map(&'a IdedExpr, Option<&'a IdedExpr>),
}

impl<'a> Shape<'a> {
    fn of(c: &'a ComprehensionExpr) -> Option<Self> {
        let accu = c.accu_var.as_str();
        let is_accu = |e: &IdedExpr| is_ident(e, accu);
        let shape = if is_literal_bool(&c.accu_init, false)
            && is_accu(&c.result)
            && call_args(&c.loop_cond, "@not_strictly_false")
                .and_then(|args| call_args(args.first()?, "!_"))
                .is_some_and(|args| args.first().is_some_and(is_accu))
            && let Some([accu_arg, p]) = call_args(&c.loop_step, "_||_")
            && is_accu(accu_arg)
        {
            Self::Exists(p)
        } else if is_literal_bool(&c.accu_init, true)
            && is_accu(&c.result)
            && call_args(&c.loop_cond, "@not_strictly_false")
                .is_some_and(|args| args.first().is_some_and(is_accu))
            && let Some([accu_arg, p]) = call_args(&c.loop_step, "_&&_")
            && is_accu(accu_arg)
        {
            Self::All(p)
        } else if is_literal_int(&c.accu_init, 0)
            && is_literal_bool(&c.loop_cond, true)
            && call_args(&c.result, "_==_").is_some_and(
                |args| matches!(args, [a, one] if is_accu(a) && is_literal_int(one, 1)),
            )
            && let Some([p, plus, otherwise]) = call_args(&c.loop_step, "_?_:_")
            && is_accu(otherwise)
            && call_args(plus, "_+_").is_some_and(
                |args| matches!(args, [a, one] if is_accu(a) && is_literal_int(one, 1)),
            )
        {
            Self::ExistsOne(p)
        } else if is_empty_list(&c.accu_init)
            && is_literal_bool(&c.loop_cond, true)
            && is_accu(&c.result)
        {
            let appended = |e: &'a IdedExpr| match call_args(e, "_+_") {
                Some([a, list]) if is_accu(a) => single_item(list),
                _ => None,
            };
            if let Some(f) = appended(&c.loop_step) {
                Self::Map(f, None)
            } else if let Some([p, step, otherwise]) = call_args(&c.loop_step, "_?_:_")
                && is_accu(otherwise)
                && let Some(f) = appended(step)
            {
                if is_ident(f, &c.iter_var) {
                    Self::Filter(p)
                } else {
                    Self::Map(f, Some(p))
                }
            } else {
                return None;
            }
        } else {
            return None;
        };
        // The accumulator cannot be named in CEL's text; were it read, the helpers would not do.
        let parts = match &shape {
            Self::Exists(p) | Self::All(p) | Self::ExistsOne(p) | Self::Filter(p) => vec![*p],
            Self::Map(f, p) => std::iter::once(*f).chain(*p).collect(),
        };
        (!parts.iter().any(|part| free_in(part, accu))).then_some(shape)
    }
}

/// Whether `e` is an optional, whatever it reads: `x.?f` or `x[?i]`.
fn is_optional(e: &IdedExpr) -> bool {
    call_args(e, "_?._").is_some() || call_args(e, "_[?_]").is_some()
}

/// The arguments of a global call of `name`.
fn call_args<'a>(e: &'a IdedExpr, name: &str) -> Option<&'a [IdedExpr]> {
    match &e.expr {
        Expr::Call(call) if call.func_name == name && call.target.is_none() => Some(&call.args),
        _ => None,
    }
}

fn is_ident(e: &IdedExpr, name: &str) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == name)
}

fn is_literal_bool(e: &IdedExpr, value: bool) -> bool {
    matches!(&e.expr, Expr::Literal(LiteralValue::Boolean(b)) if *b.inner() == value)
}

fn is_literal_int(e: &IdedExpr, value: i64) -> bool {
    matches!(&e.expr, Expr::Literal(LiteralValue::Int(i)) if *i.inner() == value)
}

fn is_empty_list(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::List(list) if list.elements.is_empty())
}

/// The item of a list literal of one item: `[f]`.
fn single_item(e: &IdedExpr) -> Option<&IdedExpr> {
    match &e.expr {
        Expr::List(list) if list.optional_indices.is_empty() => match list.elements.as_slice() {
            [item] => Some(item),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `e` always gives a bool, or fails: it may then be a Lua condition as it is.
fn is_boolean(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => true,
        Expr::Select(select) => select.test,
        Expr::Call(call) if call.target.is_none() => matches!(
            call.func_name.as_str(),
            "_==_"
                | "_!=_"
                | "_<_"
                | "_<=_"
                | "_>_"
                | "_>=_"
                | "!_"
                | "@in"
                | "_&&_"
                | "_||_"
                | "@not_strictly_false"
        ),
        Expr::Call(call) => {
            !matches!(&call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "optional")
                && matches!(
                    (call.func_name.as_str(), call.args.len()),
                    ("contains" | "startsWith" | "endsWith", 1) | ("hasValue", 0)
                )
        }
        Expr::Comprehension(c) => matches!(
            Shape::of(c),
            Some(Shape::Exists(_) | Shape::All(_) | Shape::ExistsOne(_))
        ),
        _ => false,
    }
}

/// Whether `name` is read in `e` where no comprehension inside binds it anew.
fn free_in(e: &IdedExpr, name: &str) -> bool {
    match &e.expr {
        Expr::Ident(n) => n == name,
        Expr::Select(select) => free_in(&select.operand, name),
        Expr::Call(call) => {
            call.target.as_deref().is_some_and(|t| free_in(t, name))
                || call.args.iter().any(|a| free_in(a, name))
        }
        Expr::List(list) => list.elements.iter().any(|item| free_in(item, name)),
        Expr::Map(map) => map.entries.iter().any(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => free_in(&entry.key, name) || free_in(&entry.value, name),
            EntryExpr::StructField(field) => free_in(&field.value, name),
        }),
        Expr::Struct(s) => s.entries.iter().any(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => free_in(&entry.key, name) || free_in(&entry.value, name),
            EntryExpr::StructField(field) => free_in(&field.value, name),
        }),
        Expr::Comprehension(c) => {
            free_in(&c.iter_range, name)
                || free_in(&c.accu_init, name)
                || (c.iter_var != name
                    && c.accu_var != name
                    && c.iter_var2.as_deref() != Some(name)
                    && (free_in(&c.loop_cond, name)
                        || free_in(&c.loop_step, name)
                        || free_in(&c.result, name)))
        }
        Expr::Literal(_) | Expr::Unspecified => false,
    }
}

/// Adds every name `e` reads or binds to `out`.
fn names(e: &IdedExpr, out: &mut BTreeSet<String>) {
    match &e.expr {
        Expr::Ident(name) => {
            out.insert(name.clone());
        }
        Expr::Select(select) => names(&select.operand, out),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                names(target, out);
            }
            for arg in &call.args {
                names(arg, out);
            }
        }
        Expr::List(list) => {
            for item in &list.elements {
                names(item, out);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    names(&entry.key, out);
                    names(&entry.value, out);
                }
            }
        }
        Expr::Comprehension(c) => {
            out.insert(c.iter_var.clone());
            out.insert(c.accu_var.clone());
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                names(part, out);
            }
        }
        Expr::Struct(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn literal_value(literal: &LiteralValue) -> Result<Lua, String> {
    match literal {
        LiteralValue::Boolean(b) => Ok(Lua::Atom(b.inner().to_string())),
        LiteralValue::Int(i) => {
            let i = *i.inner();
            // Lua's numbers are doubles: whole numbers are exact up to 2^53.
            if i.unsigned_abs() > 1 << 53 {
                return Err(format!("the integer {i}, beyond what Lua holds exactly"));
            }
            Ok(Lua::Atom(i.to_string()))
        }
        LiteralValue::Double(d) => {
            let d = *d.inner();
            if !d.is_finite() {
                return Err(format!("the double {d}"));
            }
            Ok(Lua::call("cel.float", vec![Lua::Atom(format!("{d:?}"))]))
        }
        LiteralValue::String(s) => Ok(Lua::string(s.inner())),
        LiteralValue::Null => Ok(Lua::Atom("cel.null".to_owned())),
        LiteralValue::UInt(u) => Err(format!("the unsigned integer {}u", u.inner())),
        LiteralValue::Bytes(_) => Err("a bytes literal".to_owned()),
    }
}

/// The runtime the generated `code` needs: the prelude, and every helper it calls, directly or
/// through another.
fn runtime_for(code: &str) -> String {
    let parts = runtime_parts();
    let mut needed: BTreeSet<&str> = BTreeSet::new();
    let mut queue: Vec<&str> = used_names(code);
    queue.extend(
        parts
            .iter()
            .filter(|(name, _)| name.is_none())
            .flat_map(|(_, text)| used_names(text)),
    );
    while let Some(name) = queue.pop() {
        if needed.insert(name)
            && let Some((_, text)) = parts.iter().find(|(n, _)| *n == Some(name))
        {
            queue.extend(used_names(text));
        }
    }
    parts
        .iter()
        .filter(|(name, _)| name.is_none_or(|n| needed.contains(n)))
        .map(|(_, text)| text.trim())
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n"
}

/// The runtime cut into its prelude and its definitions (`function cel.NAME`, `cel.NAME = `),
/// each with the comment above it.
fn runtime_parts() -> Vec<(Option<&'static str>, String)> {
    let mut parts: Vec<(Option<&'static str>, String)> = vec![(None, String::new())];
    let mut comments = String::new();
    for line in RUNTIME.lines() {
        if line.starts_with("--") {
            comments.push_str(line);
            comments.push('\n');
            continue;
        }
        if let Some(name) = defined_name(line) {
            parts.push((Some(name), std::mem::take(&mut comments)));
        } else if let Some((_, text)) = parts.last_mut() {
            text.push_str(&std::mem::take(&mut comments));
        }
        if let Some((_, text)) = parts.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    parts
}

/// The helper a line of the runtime defines.
fn defined_name(line: &'static str) -> Option<&'static str> {
    let (rest, assignment) = match line.strip_prefix("function cel.") {
        Some(rest) => (rest, false),
        None => (line.strip_prefix("cel.")?, true),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(end);
    (!name.is_empty() && (!assignment || after.starts_with(" ="))).then_some(name)
}

/// The helpers `text` calls: every `cel.NAME`.
fn used_names(text: &str) -> Vec<&str> {
    text.match_indices("cel.")
        .filter(|(at, _)| {
            text[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        })
        .filter_map(|(at, _)| {
            let rest = &text[at + 4..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

/// The helpers every script draws from: CEL's values, operators and functions in Lua 5.1
/// without the `string` and `math` libraries, and plane's verdict.
const RUNTIME: &str = include_str!("runtime.lua");

#[cfg(test)]
mod tests;
