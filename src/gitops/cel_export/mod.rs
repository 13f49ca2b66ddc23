//! The readiness a bundle declares in CEL, as the `healthCheckExprs` Flux evaluates.
//!
//! Flux's kustomize-controller (fluxcd/pkg `runtime/cel`) parses each expression with cel-go's
//! standard library, optional values, and the strings, sets and encoders extensions; it knows no
//! `let` and no `sum()`. So each expression is printed back to CEL text from its syntax tree with
//! every `let` value written in place, and `L.sum()` written out as a bounded sum.
//!
//! The exported expressions give the verdict plane gives (Current for ready, Failed, InProgress
//! for progressing) for every object with a status, but for what [`flux_caveats`] lists. Where an
//! expression cannot be evaluated, plane says progressing and Flux says Unknown: Flux waits on
//! Unknown exactly as on InProgress, and reports neither as Current nor as Failed.

use std::collections::BTreeSet;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, LiteralValue,
    SelectExpr, operators,
};
use serde::Serialize;

use crate::bundle::declared::{Generation, KindRule};
use crate::cel::Expression;

/// How many items of a list `L.sum()` adds up in Flux: it is written out item by item, as Flux
/// has no `sum()`. A longer list makes the sum an evaluation error (`L[size(L)]`, out of range)
/// rather than a wrong number: anything that depends on it is Unknown to Flux, never Current or
/// Failed, while what does not (the other side of a decided `&&` or `||`) keeps its verdict.
pub const SUM_BOUND: usize = 32;

/// The longest expression cel-go parses (its parser's code point limit).
const FLUX_MAX_LENGTH: usize = 100_000;

/// The variable the written-out sum binds its list to.
const SUM_VAR: &str = "items";

/// One entry of a Flux Kustomization's `spec.healthCheckExprs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxCheck {
    pub api_version: String,
    pub kind: String,
    pub current: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,
}

/// The readiness `rule` declares, as expressions Flux evaluates with plane's verdicts: each `let`
/// value written in place, `sum()` written out for up to [`SUM_BOUND`] items, and — as plane
/// evaluates every `let` value before any expression, and so is progressing when one cannot be
/// — the first expression Flux reads guarded by all of them (`size([...]) == n ? E : false`).
///
/// # Errors
/// A kind without readiness, a function or construct Flux's CEL environment lacks, or an
/// expression too long for cel-go's parser.
pub fn flux_check(rule: &KindRule) -> Result<FluxCheck, String> {
    let Some(readiness) = &rule.readiness else {
        return Err(format!(
            "{} declares no readiness: there is nothing for Flux to check",
            rule.kind
        ));
    };
    let printer = Printer::flux(rule);
    let export = |field: &str, ast: &IdedExpr| {
        printer
            .top(ast)
            .map_err(|why| format!("{} `{field}`: {why}", rule.kind))
    };
    let mut current = export("current", readiness.current.ast())?;
    let mut failed = readiness
        .failed
        .as_ref()
        .map(|e| export("failed", e.ast()))
        .transpose()?;
    let mut in_progress = readiness
        .in_progress
        .as_ref()
        .map(|e| export("inProgress", e.ast()))
        .transpose()?;
    if !rule.bindings.is_empty() {
        let values = rule
            .bindings
            .iter()
            .map(|(name, e)| export(&format!("let {name}"), e.ast()))
            .collect::<Result<Vec<_>, _>>()?;
        let first = in_progress
            .as_mut()
            .or(failed.as_mut())
            .unwrap_or(&mut current);
        *first = guarded(&values, first);
    }
    let text = |printed: Printed| printed.text;
    let check = FluxCheck {
        api_version: rule.api_version.clone(),
        kind: rule.kind.clone(),
        current: text(current),
        failed: failed.map(text),
        in_progress: in_progress.map(text),
    };
    for (field, expression) in [
        ("current", Some(&check.current)),
        ("failed", check.failed.as_ref()),
        ("inProgress", check.in_progress.as_ref()),
    ] {
        let length = expression.map_or(0, |e| e.chars().count());
        if length > FLUX_MAX_LENGTH {
            return Err(format!(
                "{} `{field}` is {length} characters written out for Flux; cel-go parses at most \
                 {FLUX_MAX_LENGTH}",
                rule.kind
            ));
        }
    }
    Ok(check)
}

/// What Flux cannot honour of `rule`'s readiness, one plain sentence each.
pub fn flux_caveats(rule: &KindRule) -> Vec<String> {
    let kind = &rule.kind;
    let Some(readiness) = &rule.readiness else {
        return vec![format!(
            "{kind} declares no readiness: Flux has nothing to check it by"
        )];
    };
    let mut caveats = Vec::new();
    if readiness.observed_generation == Generation::Ignore {
        caveats.push(format!(
            "{kind} declares `observedGeneration: ignore`, but Flux reads an integer \
             status.observedGeneration that differs from metadata.generation as InProgress before \
             any expression, so it waits where plane may already see the object ready or failed"
        ));
    }
    if readiness.message.is_some() {
        caveats.push(format!(
            "the `message` of {kind} is not exported: Flux reports the status alone, not why"
        ));
    }
    let mut asts: Vec<&IdedExpr> = vec![readiness.current.ast()];
    asts.extend(readiness.failed.iter().map(Expression::ast));
    asts.extend(readiness.in_progress.iter().map(Expression::ast));
    asts.extend(rule.bindings.iter().map(|(_, e)| e.ast()));
    if asts.iter().any(|ast| calls(ast, "sum")) {
        caveats.push(format!(
            "`sum()` is written out for lists of at most {SUM_BOUND} items of one numeric type: \
             Flux cannot evaluate the readiness of a {kind} whose list is longer, or mixes \
             integers with floats, and waits on it as Unknown where plane adds them up"
        ));
    }
    let names = Names::of(rule);
    for field in ["spec", "status"] {
        if names.read.contains(field) {
            caveats.push(format!(
                "Flux cannot evaluate what reads `{field}` on a {kind} without `{field}`, and \
                 waits on it as Unknown, where plane reads a missing `{field}` as an empty map"
            ));
        }
    }
    caveats
}

/// `E` evaluated only when every `let` value can be, as plane evaluates them all first.
fn guarded(values: &[Printed], expression: &Printed) -> Printed {
    let list = values
        .iter()
        .map(|v| v.text.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Printed {
        text: format!(
            "size([{list}]) == {} ? {} : false",
            values.len(),
            expression.at_least(Prec::Or)
        ),
        prec: Prec::Ternary,
    }
}

/// `L.sum()` for Flux: `L` bound once, then its items added one by one up to [`SUM_BOUND`],
/// each missing one a zero of the first one's type (`x - x`), so that a list of floats adds up
/// as floats and a list of text is an error, as with plane's `sum()`.
fn written_out_sum(list: &str) -> String {
    let v = SUM_VAR;
    let mut terms = vec![format!("{v}[0] - {v}[0] + {v}[0]")];
    for i in 1..SUM_BOUND {
        terms.push(format!("(size({v}) > {i} ? {v}[{i}] : {v}[0] - {v}[0])"));
    }
    format!(
        "[{list}].map({v}, size({v}) == 0 ? 0 : size({v}) > {SUM_BOUND} ? {v}[size({v})] : {})[0]",
        terms.join(" + ")
    )
}

/// Functions of Flux's environment called globally: cel-go's standard library, optional values,
/// and the strings, sets and encoders extensions.
const FLUX_GLOBAL: &[&str] = &[
    "size",
    "type",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "dyn",
    "duration",
    "timestamp",
    "matches",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "strings.quote",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "base64.encode",
    "base64.decode",
];

/// Functions of Flux's environment called on a target.
const FLUX_MEMBER: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "hasValue",
    "value",
    "or",
    "orValue",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "reverse",
];

/// Identifiers cel-go's parser refuses, and CEL's keywords: a field of one of these names is
/// printed as an index (`a['in']`).
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "false",
    "for",
    "function",
    "if",
    "import",
    "in",
    "let",
    "loop",
    "package",
    "namespace",
    "null",
    "return",
    "true",
    "var",
    "void",
    "while",
];

/// Operator precedence, loosest first: an operand looser than its place is parenthesised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Ternary,
    Or,
    And,
    Relation,
    Sum,
    Product,
    Unary,
    Member,
    Primary,
}

/// Printed CEL, with the precedence of its outermost operator.
#[derive(Debug, Clone)]
struct Printed {
    text: String,
    prec: Prec,
}

impl Printed {
    fn new(text: String, prec: Prec) -> Self {
        Self { text, prec }
    }

    /// The text, parenthesised when it binds looser than `min`.
    fn at_least(&self, min: Prec) -> String {
        if self.prec < min {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// Prints syntax trees back to CEL text.
struct Printer<'a> {
    /// Printing for Flux: `let` values written in place, `sum()` written out, functions checked.
    flux: bool,
    bindings: Vec<(&'a str, &'a IdedExpr)>,
    /// Names free in some `let` value: a comprehension variable so named is renamed, so that a
    /// value written in its body still reads the object's field.
    captured: BTreeSet<String>,
    /// Every identifier of the rule: a new name is none of them.
    taken: BTreeSet<String>,
}

/// Where a name is looked up: comprehension variables (as written, as printed), innermost last,
/// and how many `let` values are visible (those before the one being printed).
struct Scope {
    locals: Vec<(String, String)>,
    visible: usize,
}

impl<'a> Printer<'a> {
    /// The printer of CEL as written, for plane's own environment.
    #[cfg(test)]
    fn plain() -> Self {
        Self {
            flux: false,
            bindings: Vec::new(),
            captured: BTreeSet::new(),
            taken: BTreeSet::new(),
        }
    }

    fn flux(rule: &'a KindRule) -> Self {
        let names = Names::of(rule);
        Self {
            flux: true,
            bindings: rule.bindings.iter().map(|(n, e)| (n, e.ast())).collect(),
            captured: names.captured,
            taken: names.all,
        }
    }

    /// A whole expression, every `let` value visible.
    fn top(&self, ast: &IdedExpr) -> Result<Printed, String> {
        self.print(
            ast,
            &mut Scope {
                locals: Vec::new(),
                visible: self.bindings.len(),
            },
        )
    }

    fn at(&self, e: &IdedExpr, scope: &mut Scope, min: Prec) -> Result<String, String> {
        Ok(self.print(e, scope)?.at_least(min))
    }

    /// The target of a field selection, an index or a method: a number is parenthesised, so
    /// that its digits and the dot cannot read as one literal.
    fn operand(&self, e: &IdedExpr, scope: &mut Scope) -> Result<String, String> {
        let printed = self.print(e, scope)?;
        Ok(match &e.expr {
            Expr::Literal(
                LiteralValue::Int(_) | LiteralValue::UInt(_) | LiteralValue::Double(_),
            ) => {
                format!("({})", printed.text)
            }
            _ => printed.at_least(Prec::Member),
        })
    }

    fn print(&self, e: &IdedExpr, scope: &mut Scope) -> Result<Printed, String> {
        if let Some(opt_map) = OptMap::of(e) {
            return self.opt_map(&opt_map, scope);
        }
        match &e.expr {
            Expr::Unspecified => Err("an empty expression".into()),
            Expr::Literal(literal) => Ok(print_literal(literal)),
            Expr::Ident(name) => self.ident(name, scope),
            Expr::Select(select) => self.select(select, scope),
            Expr::Call(call) => self.call(call, scope),
            Expr::List(list) => {
                let mut elements = Vec::with_capacity(list.elements.len());
                for (i, element) in list.elements.iter().enumerate() {
                    elements.push(if list.optional_indices.contains(&i) {
                        format!("?{}", self.at(element, scope, Prec::Or)?)
                    } else {
                        self.at(element, scope, Prec::Ternary)?
                    });
                }
                Ok(Printed::new(
                    format!("[{}]", elements.join(", ")),
                    Prec::Primary,
                ))
            }
            Expr::Map(map) => {
                let mut entries = Vec::with_capacity(map.entries.len());
                for entry in &map.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        return Err("a message field in a map literal".into());
                    };
                    entries.push(format!(
                        "{}{}: {}",
                        if entry.optional { "?" } else { "" },
                        self.at(&entry.key, scope, Prec::Or)?,
                        self.at(&entry.value, scope, Prec::Ternary)?
                    ));
                }
                Ok(Printed::new(
                    format!("{{{}}}", entries.join(", ")),
                    Prec::Primary,
                ))
            }
            Expr::Struct(message) => {
                let mut fields = Vec::with_capacity(message.entries.len());
                for entry in &message.entries {
                    let EntryExpr::StructField(field) = &entry.expr else {
                        return Err("a map entry in a message literal".into());
                    };
                    fields.push(format!(
                        "{}{}: {}",
                        if field.optional { "?" } else { "" },
                        field.field,
                        self.at(&field.value, scope, Prec::Ternary)?
                    ));
                }
                Ok(Printed::new(
                    format!("{}{{{}}}", message.type_name, fields.join(", ")),
                    Prec::Primary,
                ))
            }
            Expr::Comprehension(comprehension) => self.comprehension(comprehension, scope),
        }
    }

    /// A comprehension variable as printed, a `let` value written in place (for Flux), or a
    /// field of the object.
    fn ident(&self, name: &str, scope: &Scope) -> Result<Printed, String> {
        if let Some((_, printed)) = scope.locals.iter().rev().find(|(n, _)| n == name) {
            return Ok(Printed::new(printed.clone(), Prec::Primary));
        }
        if name.starts_with(['@', '#']) {
            return Err(format!(
                "the macro variable `{name}` outside the macro that binds it"
            ));
        }
        if self.flux
            && let Some(i) = self.bindings[..scope.visible]
                .iter()
                .position(|(n, _)| *n == name)
        {
            return self.print(
                self.bindings[i].1,
                &mut Scope {
                    locals: Vec::new(),
                    visible: i,
                },
            );
        }
        Ok(Printed::new(name.to_owned(), Prec::Primary))
    }

    fn select(&self, select: &SelectExpr, scope: &mut Scope) -> Result<Printed, String> {
        let field = &select.field;
        if select.test {
            return Ok(if is_field_name(field) {
                Printed::new(
                    format!("has({}.{field})", self.operand(&select.operand, scope)?),
                    Prec::Primary,
                )
            } else {
                // A key that cannot be written as a field: the same test of a map.
                Printed::new(
                    format!(
                        "{} in {}",
                        quote(field),
                        self.at(&select.operand, scope, Prec::Sum)?
                    ),
                    Prec::Relation,
                )
            });
        }
        let operand = self.operand(&select.operand, scope)?;
        Ok(Printed::new(
            if is_field_name(field) {
                format!("{operand}.{field}")
            } else {
                format!("{operand}[{}]", quote(field))
            },
            Prec::Member,
        ))
    }

    fn call(&self, call: &CallExpr, scope: &mut Scope) -> Result<Printed, String> {
        let name = call.func_name.as_str();
        if call.target.is_none()
            && let Some(printed) = self.operator(name, &call.args, scope)?
        {
            return Ok(printed);
        }
        if self.flux && name == "sum" {
            let list = match (&call.target, call.args.as_slice()) {
                (Some(list), []) => list.as_ref(),
                (None, [list]) => list,
                _ => return Err("`sum()` takes a list and nothing else".into()),
            };
            let list = self.at(list, scope, Prec::Ternary)?;
            return Ok(Printed::new(written_out_sum(&list), Prec::Member));
        }
        let args = call
            .args
            .iter()
            .map(|arg| self.at(arg, scope, Prec::Ternary))
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        // `optional.of(x)` is parsed as the method `of` of `optional`: a namespaced function.
        if let Some(target) = &call.target
            && let Some(namespace) = qualified_name(target, scope)
        {
            let function = format!("{namespace}.{name}");
            if FLUX_GLOBAL.contains(&function.as_str()) {
                return Ok(Printed::new(format!("{function}({args})"), Prec::Primary));
            }
        }
        if let Some(target) = &call.target {
            if self.flux && !FLUX_MEMBER.contains(&name) {
                let called = qualified_name(target, scope)
                    .map_or_else(|| format!("{name}()"), |q| format!("{q}.{name}()"));
                return Err(format!("`{called}` is not in Flux's CEL environment"));
            }
            return Ok(Printed::new(
                format!("{}.{name}({args})", self.operand(target, scope)?),
                Prec::Member,
            ));
        }
        if self.flux && !FLUX_GLOBAL.contains(&name) {
            return Err(format!("`{name}()` is not in Flux's CEL environment"));
        }
        Ok(Printed::new(format!("{name}({args})"), Prec::Primary))
    }

    /// An operator call as its syntax, or `None` for a function.
    fn operator(
        &self,
        name: &str,
        args: &[IdedExpr],
        scope: &mut Scope,
    ) -> Result<Option<Printed>, String> {
        let binary = |symbol: &str, prec: Prec, left: Prec, right: Prec, scope: &mut Scope| {
            let [a, b] = args else {
                return Err(format!("`{name}` with {} operands", args.len()));
            };
            Ok(Printed::new(
                format!(
                    "{} {symbol} {}",
                    self.at(a, scope, left)?,
                    self.at(b, scope, right)?
                ),
                prec,
            ))
        };
        let unary = |symbol: &str, scope: &mut Scope| {
            let [a] = args else {
                return Err(format!("`{name}` with {} operands", args.len()));
            };
            Ok(Printed::new(
                format!("{symbol}{}", self.at(a, scope, Prec::Member)?),
                Prec::Unary,
            ))
        };
        let relation = |symbol: &str, scope: &mut Scope| {
            binary(symbol, Prec::Relation, Prec::Relation, Prec::Sum, scope)
        };
        let printed = match name {
            operators::CONDITIONAL => {
                let [condition, then, otherwise] = args else {
                    return Err(format!("`{name}` with {} operands", args.len()));
                };
                Printed::new(
                    format!(
                        "{} ? {} : {}",
                        self.at(condition, scope, Prec::Or)?,
                        self.at(then, scope, Prec::Or)?,
                        self.at(otherwise, scope, Prec::Ternary)?
                    ),
                    Prec::Ternary,
                )
            }
            operators::LOGICAL_OR => binary("||", Prec::Or, Prec::Or, Prec::Or, scope)?,
            operators::LOGICAL_AND => binary("&&", Prec::And, Prec::And, Prec::And, scope)?,
            operators::EQUALS => relation("==", scope)?,
            operators::NOT_EQUALS => relation("!=", scope)?,
            operators::LESS => relation("<", scope)?,
            operators::LESS_EQUALS => relation("<=", scope)?,
            operators::GREATER => relation(">", scope)?,
            operators::GREATER_EQUALS => relation(">=", scope)?,
            operators::IN => relation("in", scope)?,
            operators::ADD => binary("+", Prec::Sum, Prec::Sum, Prec::Product, scope)?,
            operators::SUBSTRACT => binary("-", Prec::Sum, Prec::Sum, Prec::Product, scope)?,
            operators::MULTIPLY => binary("*", Prec::Product, Prec::Product, Prec::Unary, scope)?,
            operators::DIVIDE => binary("/", Prec::Product, Prec::Product, Prec::Unary, scope)?,
            operators::MODULO => binary("%", Prec::Product, Prec::Product, Prec::Unary, scope)?,
            operators::LOGICAL_NOT => unary("!", scope)?,
            operators::NEGATE => unary("-", scope)?,
            operators::INDEX | operators::OPT_INDEX => {
                let [target, index] = args else {
                    return Err(format!("`{name}` with {} operands", args.len()));
                };
                let optional = if name == operators::OPT_INDEX {
                    "?"
                } else {
                    ""
                };
                Printed::new(
                    format!(
                        "{}[{optional}{}]",
                        self.operand(target, scope)?,
                        self.at(index, scope, Prec::Ternary)?
                    ),
                    Prec::Member,
                )
            }
            operators::OPT_SELECT => {
                let [target, field] = args else {
                    return Err(format!("`{name}` with {} operands", args.len()));
                };
                let Expr::Literal(LiteralValue::String(field)) = &field.expr else {
                    return Err("an optional selection of a field that is not a name".into());
                };
                let field = field.inner();
                let target = self.operand(target, scope)?;
                Printed::new(
                    if is_field_name(field) {
                        format!("{target}.?{field}")
                    } else {
                        format!("{target}[?{}]", quote(field))
                    },
                    Prec::Member,
                )
            }
            _ if name.starts_with(['_', '@', '!', '-']) => {
                return Err(format!("the operator `{name}` outside its macro"));
            }
            _ => return Ok(None),
        };
        Ok(Some(printed))
    }

    /// A comprehension as the macro that made it (`x.exists(v, p)`, `x.map(v, f)`, ...).
    fn comprehension(
        &self,
        comprehension: &ComprehensionExpr,
        scope: &mut Scope,
    ) -> Result<Printed, String> {
        let Some((name, body)) = macro_of(comprehension) else {
            return Err(
                "a comprehension that is none of CEL's macros (all, exists, exists_one, map, \
                 filter, optMap, optFlatMap)"
                    .into(),
            );
        };
        let range = self.operand(&comprehension.iter_range, scope)?;
        let var = self.local(&comprehension.iter_var, scope);
        let body = body
            .iter()
            .map(|e| self.at(e, scope, Prec::Ternary))
            .collect::<Result<Vec<_>, _>>();
        scope.locals.pop();
        Ok(Printed::new(
            format!("{range}.{name}({var}, {})", body?.join(", ")),
            Prec::Member,
        ))
    }

    fn opt_map(&self, opt_map: &OptMap<'_>, scope: &mut Scope) -> Result<Printed, String> {
        let target = self.operand(opt_map.target, scope)?;
        let var = self.local(opt_map.var, scope);
        let body = self.at(opt_map.body, scope, Prec::Ternary);
        scope.locals.pop();
        let name = if opt_map.wrap { "optMap" } else { "optFlatMap" };
        Ok(Printed::new(
            format!("{target}.{name}({var}, {})", body?),
            Prec::Member,
        ))
    }

    /// Binds the comprehension variable `name` in `scope` (the caller pops it), renamed when a
    /// `let` value written in its body reads a field of that name.
    fn local(&self, name: &str, scope: &mut Scope) -> String {
        let printed = if self.captured.contains(name) {
            // Fewer names are taken than there are numbers to try.
            (1..=self.taken.len() + self.captured.len() + 1)
                .map(|n| format!("{name}_{n}"))
                .find(|fresh| !self.taken.contains(fresh) && !self.captured.contains(fresh))
                .unwrap_or_else(|| name.to_owned())
        } else {
            name.to_owned()
        };
        scope.locals.push((name.to_owned(), printed.clone()));
        printed
    }
}

/// `t.optMap(v, e)` or `t.optFlatMap(v, e)` as the cel crate expands them: `t.hasValue() ?
/// optional.of(<e, v bound to t.value()>) : optional.none()`, a target other than an identifier
/// first bound to `@target`.
struct OptMap<'e> {
    target: &'e IdedExpr,
    var: &'e str,
    body: &'e IdedExpr,
    wrap: bool,
}

impl<'e> OptMap<'e> {
    fn of(e: &'e IdedExpr) -> Option<Self> {
        match &e.expr {
            Expr::Comprehension(c) => {
                let (var, init, result) = bind_of(c)?;
                if var != "@target" {
                    return None;
                }
                let mut opt_map = Self::expanded(result, "@target")?;
                opt_map.target = init;
                Some(opt_map)
            }
            Expr::Call(call) if call.func_name == operators::CONDITIONAL => {
                let [has_value, _, _] = call.args.as_slice() else {
                    return None;
                };
                let Expr::Call(has_value) = &has_value.expr else {
                    return None;
                };
                let target = has_value.target.as_deref()?;
                let Expr::Ident(name) = &target.expr else {
                    return None;
                };
                let mut opt_map = Self::expanded(e, name)?;
                opt_map.target = target;
                Some(opt_map)
            }
            _ => None,
        }
    }

    /// The conditional of the expansion over the variable `target`; its target is the
    /// conditional itself until the caller sets it.
    fn expanded(e: &'e IdedExpr, target: &str) -> Option<Self> {
        let Expr::Call(call) = &e.expr else {
            return None;
        };
        let [has_value, some, none] = call.args.as_slice() else {
            return None;
        };
        if call.func_name != operators::CONDITIONAL
            || !is_method(has_value, target, "hasValue", 0)
            || !is_method(none, "optional", "none", 0)
        {
            return None;
        }
        let (wrap, bound) = match &some.expr {
            Expr::Call(of) if is_method(some, "optional", "of", 1) => (true, &of.args[0]),
            _ => (false, some),
        };
        let Expr::Comprehension(bound) = &bound.expr else {
            return None;
        };
        let (var, init, body) = bind_of(bound)?;
        is_method(init, target, "value", 0).then_some(Self {
            target: e,
            var,
            body,
            wrap,
        })
    }
}

/// `var` bound to `init` in `result`, as the optional macros bind: a comprehension over no
/// items whose accumulator is `var`.
fn bind_of(c: &ComprehensionExpr) -> Option<(&str, &IdedExpr, &IdedExpr)> {
    let empty = matches!(&c.iter_range.expr, Expr::List(list) if list.elements.is_empty());
    (empty
        && c.iter_var == "#unused"
        && c.iter_var2.is_none()
        && is_bool(&c.loop_cond, false)
        && is_ident(&c.loop_step, &c.accu_var))
    .then_some((c.accu_var.as_str(), &c.accu_init, &c.result))
}

/// The macro that expanded into `c`, and what it was given after its variable.
fn macro_of(c: &ComprehensionExpr) -> Option<(&'static str, Vec<&IdedExpr>)> {
    const ACCU: &str = "@result";
    if c.accu_var != ACCU || c.iter_var2.is_some() {
        return None;
    }
    // exists_one: 0, then `p ? @result + 1 : @result`, then `@result == 1`.
    if is_int(&c.accu_init, 0)
        && is_bool(&c.loop_cond, true)
        && let Some([p, then, otherwise]) = call_args(&c.loop_step, operators::CONDITIONAL)
        && let Some([accu, one]) = call_args(then, operators::ADD)
        && is_ident(accu, ACCU)
        && is_int(one, 1)
        && is_ident(otherwise, ACCU)
        && let Some([accu, one]) = call_args(&c.result, operators::EQUALS)
        && is_ident(accu, ACCU)
        && is_int(one, 1)
    {
        return Some(("exists_one", vec![p]));
    }
    if !is_ident(&c.result, ACCU) {
        return None;
    }
    // all: true, while not false, `@result && p`.
    if is_bool(&c.accu_init, true)
        && let Some([accu]) = call_args(&c.loop_cond, operators::NOT_STRICTLY_FALSE)
        && is_ident(accu, ACCU)
        && let Some([accu, p]) = call_args(&c.loop_step, operators::LOGICAL_AND)
        && is_ident(accu, ACCU)
    {
        return Some(("all", vec![p]));
    }
    // exists: false, while not true, `@result || p`.
    if is_bool(&c.accu_init, false)
        && let Some([not]) = call_args(&c.loop_cond, operators::NOT_STRICTLY_FALSE)
        && let Some([accu]) = call_args(not, operators::LOGICAL_NOT)
        && is_ident(accu, ACCU)
        && let Some([accu, p]) = call_args(&c.loop_step, operators::LOGICAL_OR)
        && is_ident(accu, ACCU)
    {
        return Some(("exists", vec![p]));
    }
    let empty = matches!(&c.accu_init.expr, Expr::List(list) if list.elements.is_empty());
    if !empty || !is_bool(&c.loop_cond, true) {
        return None;
    }
    // map: `@result + [f]`; with a filter, or filter itself: `p ? @result + [f] : @result`.
    if let Some(f) = appended(&c.loop_step, ACCU) {
        return Some(("map", vec![f]));
    }
    if let Some([p, then, otherwise]) = call_args(&c.loop_step, operators::CONDITIONAL)
        && is_ident(otherwise, ACCU)
        && let Some(f) = appended(then, ACCU)
    {
        return Some(if is_ident(f, &c.iter_var) {
            ("filter", vec![p])
        } else {
            ("map", vec![p, f])
        });
    }
    None
}

/// `f` of `accu + [f]`.
fn appended<'e>(e: &'e IdedExpr, accu: &str) -> Option<&'e IdedExpr> {
    let [list_so_far, item] = call_args(e, operators::ADD)? else {
        return None;
    };
    match &item.expr {
        Expr::List(list)
            if is_ident(list_so_far, accu)
                && list.elements.len() == 1
                && list.optional_indices.is_empty() =>
        {
            list.elements.first()
        }
        _ => None,
    }
}

/// The operands of the global call (or operator) `name`.
fn call_args<'e>(e: &'e IdedExpr, name: &str) -> Option<&'e [IdedExpr]> {
    match &e.expr {
        Expr::Call(call) if call.target.is_none() && call.func_name == name => {
            Some(call.args.as_slice())
        }
        _ => None,
    }
}

/// Whether `e` is `target.name(...)` with `arity` arguments, `target` an identifier.
fn is_method(e: &IdedExpr, target: &str, name: &str, arity: usize) -> bool {
    matches!(&e.expr, Expr::Call(call)
        if call.func_name == name
            && call.args.len() == arity
            && call.target.as_deref().is_some_and(|t| is_ident(t, target)))
}

fn is_ident(e: &IdedExpr, name: &str) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == name)
}

fn is_bool(e: &IdedExpr, value: bool) -> bool {
    matches!(&e.expr, Expr::Literal(LiteralValue::Boolean(b)) if *b.inner() == value)
}

fn is_int(e: &IdedExpr, value: i64) -> bool {
    matches!(&e.expr, Expr::Literal(LiteralValue::Int(i)) if *i.inner() == value)
}

/// `a.b.c` of an identifier that is no comprehension variable, and selections of it.
fn qualified_name(e: &IdedExpr, scope: &Scope) -> Option<String> {
    match &e.expr {
        Expr::Ident(name) if !scope.locals.iter().any(|(n, _)| n == name) => Some(name.clone()),
        Expr::Select(select) if !select.test => Some(format!(
            "{}.{}",
            qualified_name(&select.operand, scope)?,
            select.field
        )),
        _ => None,
    }
}

/// Whether `field` can be written after a dot.
fn is_field_name(field: &str) -> bool {
    let mut chars = field.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !RESERVED.contains(&field)
}

fn print_literal(literal: &LiteralValue) -> Printed {
    match literal {
        LiteralValue::Boolean(b) => Printed::new(b.inner().to_string(), Prec::Primary),
        LiteralValue::Null => Printed::new("null".into(), Prec::Primary),
        LiteralValue::Int(i) => {
            let i = *i.inner();
            Printed::new(i.to_string(), sign(i < 0))
        }
        LiteralValue::UInt(u) => Printed::new(format!("{}u", u.inner()), Prec::Primary),
        LiteralValue::Double(d) => print_double(*d.inner()),
        LiteralValue::String(s) => Printed::new(quote(s.inner()), Prec::Primary),
        LiteralValue::Bytes(b) => {
            let mut text = String::from("b'");
            for &byte in b.inner() {
                match byte {
                    b'\\' => text.push_str("\\\\"),
                    b'\'' => text.push_str("\\'"),
                    0x20..=0x7e => text.push(char::from(byte)),
                    _ => text.push_str(&format!("\\x{byte:02x}")),
                }
            }
            text.push('\'');
            Printed::new(text, Prec::Primary)
        }
    }
}

/// A negative number reads as a negation where precedence matters.
fn sign(negative: bool) -> Prec {
    if negative { Prec::Unary } else { Prec::Primary }
}

/// A double that reads back as the same double, with a dot or an exponent so that it stays one.
fn print_double(d: f64) -> Printed {
    if d.is_nan() {
        return Printed::new("double('NaN')".into(), Prec::Primary);
    }
    if d.is_infinite() {
        let minus = if d < 0.0 { "-" } else { "" };
        return Printed::new(format!("{minus}double('Infinity')"), sign(d < 0.0));
    }
    // Rust's shortest round-trip form: `1.0`, `0.25`, `1e21`, `1.5e-7`.
    Printed::new(format!("{d:?}"), sign(d.is_sign_negative()))
}

/// `text` as a CEL string literal.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Whether `e` calls the function `name` anywhere.
fn calls(e: &IdedExpr, name: &str) -> bool {
    matches!(&e.expr, Expr::Call(call) if call.func_name == name)
        || children(e).into_iter().any(|child| calls(child, name))
}

/// The expressions directly inside `e`.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(call) => call
            .target
            .as_deref()
            .into_iter()
            .chain(call.args.iter())
            .collect(),
        Expr::Select(select) => vec![select.operand.as_ref()],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map.entries.iter().flat_map(entry).collect(),
        Expr::Struct(message) => message.entries.iter().flat_map(entry).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
    }
}

fn entry(entry: &IdedEntryExpr) -> Vec<&IdedExpr> {
    match &entry.expr {
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        EntryExpr::StructField(f) => vec![&f.value],
    }
}

/// The names a rule's expressions use.
struct Names {
    /// Every identifier, comprehension variables included.
    all: BTreeSet<String>,
    /// The names free in some `let` value (fields of the object), other values written out.
    captured: BTreeSet<String>,
    /// The names the exported expressions read: those of the readiness expressions and of every
    /// `let` value (the guard reads them all).
    read: BTreeSet<String>,
}

impl Names {
    fn of(rule: &KindRule) -> Self {
        let mut all = BTreeSet::new();
        let mut values: Vec<(&str, BTreeSet<String>)> = Vec::new();
        let written_out = |free: BTreeSet<String>, values: &[(&str, BTreeSet<String>)]| {
            let mut names = BTreeSet::new();
            for name in free {
                match values.iter().find(|(n, _)| *n == name) {
                    Some((_, theirs)) => names.extend(theirs.iter().cloned()),
                    None => {
                        names.insert(name);
                    }
                }
            }
            names
        };
        for (name, expression) in rule.bindings.iter() {
            let mut free = BTreeSet::new();
            walk(expression.ast(), &mut Vec::new(), &mut free, &mut all);
            let names = written_out(free, &values);
            values.push((name, names));
        }
        let captured: BTreeSet<String> = values.iter().flat_map(|(_, n)| n.clone()).collect();
        let mut read = captured.clone();
        if let Some(readiness) = &rule.readiness {
            let expressions = [
                Some(&readiness.current),
                readiness.failed.as_ref(),
                readiness.in_progress.as_ref(),
            ];
            for expression in expressions.into_iter().flatten() {
                let mut free = BTreeSet::new();
                walk(expression.ast(), &mut Vec::new(), &mut free, &mut all);
                read.extend(written_out(free, &values));
            }
        }
        Self {
            all,
            captured,
            read,
        }
    }
}

/// Collects the identifiers of `e` into `all`, and those not bound by a comprehension around
/// them into `free`.
fn walk(
    e: &IdedExpr,
    bound: &mut Vec<String>,
    free: &mut BTreeSet<String>,
    all: &mut BTreeSet<String>,
) {
    match &e.expr {
        Expr::Ident(name) => {
            all.insert(name.clone());
            if !bound.contains(name) {
                free.insert(name.clone());
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound, free, all);
            walk(&c.accu_init, bound, free, all);
            let vars: Vec<String> = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            all.extend(vars.iter().cloned());
            let depth = bound.len();
            bound.extend(vars);
            for body in [&c.loop_cond, &c.loop_step, &c.result] {
                walk(body, bound, free, all);
            }
            bound.truncate(depth);
        }
        _ => {
            for child in children(e) {
                walk(child, bound, free, all);
            }
        }
    }
}

#[cfg(test)]
mod tests;
