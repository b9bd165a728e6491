//! Shared Rhai plumbing for the nodes that run user code (filter expressions, computed fields,
//! custom code): a sandboxed engine (no I/O, no `eval`, no modules, bounded operations, call
//! depth and data sizes), compiling sources once with errors that name the param, evaluating
//! an expression with a record's fields as variables, and direct conversions between record
//! values and Rhai values.

use compact_str::CompactString;
use flow_model::{Record, Value};
use flow_runtime::NodeError;
use rhai::{AST, Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Scope};

use crate::simple_expr::SimpleExpr;

/// Deepest chain of script function calls; guards the native stack against runaway recursion.
const MAX_CALL_LEVELS: usize = 32;
/// Longest string a script may build, in bytes.
const MAX_STRING_SIZE: usize = 16 * 1024 * 1024;
/// Most elements in an array a script builds (nested arrays count towards it).
const MAX_ARRAY_SIZE: usize = 1_000_000;
/// Most properties in an object map a script builds (nested maps count towards it).
const MAX_MAP_SIZE: usize = 100_000;

/// A Rhai engine locked down for running untrusted scripts on records.
pub(crate) struct Sandbox {
    engine: Engine,
    max_operations: u64,
}

impl Sandbox {
    /// An engine whose every evaluation stops after `max_operations` operations.
    pub(crate) fn new(max_operations: u64) -> Self {
        let mut engine = Engine::new();
        // `Engine::new` installs a file module resolver, so `import "x"` would read scripts from
        // disk: refuse every import instead.
        engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        engine.set_max_modules(0);
        engine.disable_symbol("eval");
        engine.set_max_operations(max_operations);
        engine.set_max_call_levels(MAX_CALL_LEVELS);
        engine.set_max_string_size(MAX_STRING_SIZE);
        engine.set_max_array_size(MAX_ARRAY_SIZE);
        engine.set_max_map_size(MAX_MAP_SIZE);
        // The default handlers write to stdout, which belongs to the host.
        engine.on_print(|s| tracing::debug!(target: "flow_nodes::script", "print: {s}"));
        engine.on_debug(|s, source, pos| {
            tracing::debug!(target: "flow_nodes::script", source = source.unwrap_or(""), %pos, "debug: {s}");
        });
        Self { engine, max_operations }
    }

    /// Compiles a single expression (no statements) from param `param` (e.g. `expression`).
    pub(crate) fn compile_expression(&self, param: &str, source: &str) -> Result<AST, NodeError> {
        self.engine.compile_expression(source).map_err(|e| compile_error(param, &e))
    }

    /// Compiles a whole script from param `param`.
    pub(crate) fn compile_script(&self, param: &str, source: &str) -> Result<AST, NodeError> {
        self.engine.compile(source).map_err(|e| compile_error(param, &e))
    }

    /// Runs `ast` against `scope`; the error is a message fit for a record error.
    pub(crate) fn eval(&self, scope: &mut Scope<'static>, ast: &AST) -> Result<Dynamic, String> {
        self.engine.eval_ast_with_scope::<Dynamic>(scope, ast).map_err(|e| match *e {
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "script stopped after max_operations ({}) operations; it may loop forever, \
                 or raise params.max_operations",
                self.max_operations
            ),
            other => other.to_string(),
        })
    }
}

/// A source in param `param` (dotted, `operations[2].expression`) that does not compile; Rhai's
/// message ends with the line and position.
fn compile_error(param: &str, e: &rhai::ParseError) -> NodeError {
    let pointer: String = std::iter::once('/')
        .chain(param.chars().filter(|c| *c != ']').map(|c| if c == '[' || c == '.' { '/' } else { c }))
        .collect();
    NodeError::code(pointer, format!("params.{param}: {e}"))
}

/// An expression over a record's fields, compiled once: every field the expression names is a
/// (constant) variable.
pub(crate) struct FieldExpression {
    ast: AST,
    /// Identifier-like words of the source. Only fields named here can be referenced, so only
    /// they are converted and pushed, which spares converting every field of wide records.
    names: Vec<CompactString>,
    /// The same expression evaluated without Rhai, when it is a simple comparison.
    simple: Option<SimpleExpr>,
}

impl FieldExpression {
    pub(crate) fn compile(sandbox: &Sandbox, param: &str, source: &str) -> Result<Self, NodeError> {
        let ast = sandbox.compile_expression(param, source)?;
        let simple = SimpleExpr::compile(source, sandbox.max_operations);
        Ok(Self { ast, names: identifiers(source), simple })
    }

    /// Evaluates the expression on `record`: directly when it is simple and the record's values
    /// allow it, otherwise with Rhai, reusing `scope` (cleared first) to avoid reallocating it
    /// for every record.
    pub(crate) fn eval(
        &self,
        sandbox: &Sandbox,
        scope: &mut Scope<'static>,
        record: &Record,
    ) -> Result<Dynamic, String> {
        if let Some(b) = self.simple.as_ref().and_then(|s| s.eval(record)) {
            return Ok(Dynamic::from_bool(b));
        }
        scope.clear();
        for name in &self.names {
            if let Some(v) = record.get(name) {
                scope.push_constant_dynamic(name.as_str(), to_dynamic(v));
            }
        }
        sandbox.eval(scope, &self.ast)
    }
}

/// The distinct words of `source` that could be Rhai identifiers (letters, digits and `_`, not
/// starting with a digit, with at least one letter). Words inside string literals are included:
/// a superset is harmless.
fn identifiers(source: &str) -> Vec<CompactString> {
    let mut out: Vec<CompactString> = Vec::new();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = source;
    while let Some(start) = rest.find(word) {
        let tail = &rest[start..];
        let len = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
        let w = &tail[..len];
        let first_ok = !w.starts_with(|c: char| c.is_ascii_digit());
        if first_ok && w.contains(|c: char| c.is_ascii_alphabetic()) && !out.iter().any(|o| o == w) {
            out.push(w.into());
        }
        rest = &tail[len..];
    }
    out
}

/// A record value as a Rhai value. Rhai has no decimal, date or id types here: decimals become
/// floats, the others their text form (RFC 3339 timestamps, hex ids).
pub(crate) fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Decimal(_) => Dynamic::from_float(v.as_f64().unwrap_or(f64::NAN)),
        Value::Timestamp(_)
        | Value::LocalDateTime(_)
        | Value::Date(_)
        | Value::Uuid(_)
        | Value::ObjectId(_)
        | Value::Bytes(_) => Dynamic::from(ImmutableString::from(v.to_string())),
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::Float(f) => Dynamic::from_float(*f),
        Value::String(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        Value::Array(a) => Dynamic::from_array(a.iter().map(to_dynamic).collect::<Array>()),
        Value::Object(r) => Dynamic::from_map(record_to_map(r)),
    }
}

/// A record as a Rhai object map.
pub(crate) fn record_to_map(r: &Record) -> Map {
    r.iter().map(|(k, v)| (k.as_str().into(), to_dynamic(v))).collect()
}

/// A Rhai value as a record value. Characters become strings and blobs arrays of byte values;
/// other Rhai types (function pointers, timestamps, ranges, ...) have no record equivalent.
pub(crate) fn from_dynamic(d: Dynamic) -> Result<Value, String> {
    // Values captured by closures are shared; read through to the value itself.
    let d = d.flatten();
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::Int(i));
    }
    if let Ok(f) = d.as_float() {
        return Ok(Value::Float(f));
    }
    if let Ok(c) = d.as_char() {
        let mut s = CompactString::default();
        s.push(c);
        return Ok(Value::String(s));
    }
    if d.is_string() {
        let s = d.into_immutable_string().map_err(|t| format!("unexpected {t}"))?;
        return Ok(Value::String(s.as_str().into()));
    }
    if d.is_array() {
        let a = d.into_array().map_err(|t| format!("unexpected {t}"))?;
        return a.into_iter().map(from_dynamic).collect::<Result<_, _>>().map(Value::Array);
    }
    if d.is_blob() {
        let b = d.into_blob().map_err(|t| format!("unexpected {t}"))?;
        return Ok(Value::Array(b.into_iter().map(|x| Value::Int(i64::from(x))).collect()));
    }
    if d.is_map() {
        let type_name = d.type_name();
        let m = d.try_cast::<Map>().ok_or_else(|| format!("unexpected {type_name}"))?;
        return map_to_record(m, []).map(Value::Object);
    }
    Err(format!("a script value of type {} cannot be stored in a record", d.type_name()))
}

/// A Rhai object map as a record. Maps keep their keys sorted, so the fields named in `order`
/// come first, in that order (this keeps an input record's field order), then the others.
pub(crate) fn map_to_record<'a>(
    mut m: Map,
    order: impl IntoIterator<Item = &'a str>,
) -> Result<Record, String> {
    let mut r = Record::with_capacity(m.len());
    for name in order {
        if let Some(v) = m.remove(name) {
            r.push_unchecked(name.into(), from_dynamic(v)?);
        }
    }
    for (k, v) in m {
        r.push_unchecked(k.as_str().into(), from_dynamic(v)?);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record::from([
            ("b", Value::Int(1)),
            ("a", Value::Float(2.5)),
            ("s", "hi".into()),
            ("n", Value::Null),
            ("t", true.into()),
            ("l", Value::Array(vec![1.into(), "x".into()])),
            ("o", Value::Object(Record::from([("z", 1.into()), ("y", 2.into())]))),
        ])
    }

    #[test]
    fn values_round_trip_through_dynamic() {
        let r = sample();
        let back = map_to_record(record_to_map(&r), r.keys()).expect("converts back");
        assert_eq!(back.keys().collect::<Vec<_>>(), ["b", "a", "s", "n", "t", "l", "o"]);
        assert_eq!(back.get("b"), Some(&Value::Int(1)));
        assert_eq!(back.get("a"), Some(&Value::Float(2.5)));
        assert_eq!(back.get("s"), Some(&"hi".into()));
        assert_eq!(back.get("n"), Some(&Value::Null));
        assert_eq!(back.get("l"), r.get("l"));
        // Nested maps come back in key order.
        let Some(Value::Object(o)) = back.get("o") else { panic!("o is an object") };
        assert_eq!(o.keys().collect::<Vec<_>>(), ["y", "z"]);
    }

    #[test]
    fn chars_and_blobs_convert_and_other_types_are_refused() {
        let sandbox = Sandbox::new(1000);
        let ast = sandbox.compile_script("script", "['c', blob(2, 7)]").expect("compiles");
        let v = from_dynamic(sandbox.eval(&mut Scope::new(), &ast).expect("runs")).expect("converts");
        let expected = Value::Array(vec!["c".into(), Value::Array(vec![7.into(), 7.into()])]);
        assert_eq!(v, expected);
        let ast = sandbox.compile_script("script", "Fn(\"abs\")").expect("compiles");
        let err = from_dynamic(sandbox.eval(&mut Scope::new(), &ast).expect("runs")).expect_err("refused");
        assert!(err.contains("Fn"), "{err}");
    }

    #[test]
    fn expression_sees_fields_as_variables() {
        let sandbox = Sandbox::new(1000);
        let e = FieldExpression::compile(&sandbox, "expression", "b + a * 2.0 > 5.0 && s == \"hi\"")
            .expect("compiles");
        let v = e.eval(&sandbox, &mut Scope::new(), &sample()).expect("runs");
        assert_eq!(v.as_bool(), Ok(true));
    }

    #[test]
    fn compile_errors_name_the_param() {
        let sandbox = Sandbox::new(1000);
        let err = sandbox.compile_expression("expression", "a >").expect_err("invalid");
        let nested = sandbox.compile_expression("operations[2].expression", "(").expect_err("invalid");
        assert_eq!(nested.code_param.as_deref(), Some("/operations/2/expression"));
        assert_eq!(err.kind, flow_runtime::ErrorKind::Params);
        assert!(err.message.starts_with("params.expression: "), "{}", err.message);
    }

    #[test]
    fn sandbox_refuses_eval_imports_and_runaway_scripts() {
        let sandbox = Sandbox::new(1000);
        assert!(sandbox.compile_script("script", "eval(\"1\")").is_err());
        let ast = sandbox.compile_script("script", "import \"secrets\" as s; 1").expect("compiles");
        assert!(sandbox.eval(&mut Scope::new(), &ast).is_err());
        let ast = sandbox.compile_script("script", "loop {}").expect("compiles");
        let err = sandbox.eval(&mut Scope::new(), &ast).expect_err("stopped");
        assert!(err.contains("max_operations (1000)"), "{err}");
        let ast = sandbox.compile_script("script", "let s = \"x\"; loop { s += s }").expect("compiles");
        let err = sandbox.eval(&mut Scope::new(), &ast).expect_err("stopped");
        assert!(err.contains("string"), "{err}");
    }

    #[test]
    fn identifiers_skip_numbers_and_punctuation() {
        let ids = identifiers("age > 25 && _x1 == \"a b\" || 1e5 < age_2 + _");
        assert_eq!(ids, ["age", "_x1", "a", "b", "age_2"]);
    }
}
