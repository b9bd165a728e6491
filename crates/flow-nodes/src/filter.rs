//! Filter: passes the records that satisfy structured conditions (compiled once into direct
//! value comparisons, the fast path) or a Rhai boolean expression over the record's fields, and
//! drops the rest. A record whose expression fails goes to the error output or fails the node.

use std::cmp::Ordering;

use async_trait::async_trait;
use compact_str::CompactString;
use flow_model::{
    Batch, Category, FieldRef, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema, Value,
};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use rhai::Scope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::params::{decode, peek, schema_of};
use crate::script::{FieldExpression, Sandbox};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Conditions,
    Expression,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Match {
    #[default]
    All,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Gte | Op::Lt | Op::Lte)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Condition {
    /// Field of the incoming records; a missing field is null.
    field: String,
    /// eq / ne (1 equals 1.0), gt / gte / lt / lte (numbers with numbers, strings with strings;
    /// other pairs never match), contains (substring of a string, or element of an array),
    /// starts_with / ends_with (strings), in / not_in (one of a list), is_null / is_not_null.
    op: Op,
    /// The value to compare with: a list for in / not_in, a string for starts_with / ends_with,
    /// not used by is_null / is_not_null.
    #[serde(default)]
    value: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `conditions` tests the structured conditions (fast); `expression` evaluates a Rhai
    /// expression.
    #[serde(default)]
    mode: Mode,
    /// Conditions mode: whether all conditions must hold or any one.
    #[serde(default, rename = "match")]
    match_mode: Match,
    /// Conditions mode: the tests on fields.
    #[serde(default)]
    conditions: Vec<Condition>,
    /// Expression mode: a Rhai boolean expression; fields whose names are identifiers are
    /// variables, e.g. `age > 25 && status == "active"`. Naming a field a record lacks is an error
    /// for that record.
    #[serde(default)]
    expression: String,
    /// Expression mode: most operations one evaluation may take.
    #[serde(default = "default_max_operations")]
    #[schemars(range(min = 1))]
    max_operations: u64,
}

fn default_max_operations() -> u64 {
    10_000
}

pub(crate) struct Filter;

impl NodeSpec for Filter {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "filter".into(),
            title: "Filter".into(),
            category: Category::Transform,
            description: "Passes the records that match structured conditions (all or any) or a Rhai boolean \
                          expression, and drops the others. In expression mode a record whose evaluation fails \
                          (or does not give a bool) is an error: routed to `error` or failing the node."
                .into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "Matching records, in input order"), PortSpec::error_output()],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }

    fn output_schema(
        &self,
        _port: &str,
        _params: &serde_json::Value,
        inputs: &[Option<RecordSchema>],
    ) -> Option<RecordSchema> {
        inputs.first().cloned().flatten()
    }

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<Params>(params) else { return Vec::new() };
        if p.mode == Mode::Expression {
            return Vec::new();
        }
        p.conditions
            .iter()
            .enumerate()
            .map(|(i, c)| FieldRef {
                port: "in".into(),
                field: c.field.clone(),
                param: format!("/conditions/{i}/field"),
                numeric: c.op.is_ordering() && c.value.as_ref().is_some_and(serde_json::Value::is_number),
            })
            .collect()
    }
}

impl NodeType for Filter {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(FilterOp { predicate: Predicate::new(&p)?, seen: 0 }))
    }
}

/// One structured condition, with its comparison value converted once.
enum Test {
    Eq(Value),
    Ne(Value),
    /// An ordering test: passes when the field compares with the value as `accept` wants.
    Cmp(Value, fn(Ordering) -> bool),
    Contains(Value),
    StartsWith(CompactString),
    EndsWith(CompactString),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    IsNull,
    IsNotNull,
}

struct Check {
    field: CompactString,
    test: Test,
}

/// Stands in for a missing field, which conditions treat as null.
static NULL: Value = Value::Null;

impl Check {
    fn compile(i: usize, c: &Condition) -> Result<Self, NodeError> {
        let param = |what: &str| NodeError::params(format!("params.conditions[{i}].value: {what}"));
        let value = match (&c.value, c.op) {
            (_, Op::IsNull | Op::IsNotNull) => Value::Null,
            (Some(v), _) => Value::from(v),
            (None, _) => return Err(param("required (use is_null / is_not_null to test for null)")),
        };
        let text = |v: Value| match v {
            Value::String(s) => Ok(s),
            _ => Err(param("starts_with / ends_with need a string")),
        };
        let list = |v: Value| match v {
            Value::Array(a) => Ok(a),
            _ => Err(param("in / not_in need a list")),
        };
        let test = match c.op {
            Op::Eq => Test::Eq(value),
            Op::Ne => Test::Ne(value),
            Op::Gt => Test::Cmp(value, Ordering::is_gt),
            Op::Gte => Test::Cmp(value, Ordering::is_ge),
            Op::Lt => Test::Cmp(value, Ordering::is_lt),
            Op::Lte => Test::Cmp(value, Ordering::is_le),
            Op::Contains => Test::Contains(value),
            Op::StartsWith => Test::StartsWith(text(value)?),
            Op::EndsWith => Test::EndsWith(text(value)?),
            Op::In => Test::In(list(value)?),
            Op::NotIn => Test::NotIn(list(value)?),
            Op::IsNull => Test::IsNull,
            Op::IsNotNull => Test::IsNotNull,
        };
        Ok(Self { field: c.field.as_str().into(), test })
    }

    #[inline]
    fn passes(&self, r: &Record) -> bool {
        let v = r.get(&self.field).unwrap_or(&NULL);
        match &self.test {
            Test::Eq(x) => v.loose_eq(x),
            Test::Ne(x) => !v.loose_eq(x),
            Test::Cmp(x, accept) => ordered(v, x).is_some_and(accept),
            Test::Contains(x) => match (v, x) {
                (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
                (Value::Array(a), x) => a.iter().any(|e| e.loose_eq(x)),
                _ => false,
            },
            Test::StartsWith(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Test::EndsWith(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Test::In(list) => list.iter().any(|e| v.loose_eq(e)),
            Test::NotIn(list) => !list.iter().any(|e| v.loose_eq(e)),
            Test::IsNull => v.is_null(),
            Test::IsNotNull => !v.is_null(),
        }
    }
}

/// The order of two values when they are comparable: numbers with numbers (NaN with nothing),
/// strings with strings, bools with bools.
fn ordered(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Float(f), _) | (_, Value::Float(f)) if f.is_nan() => None,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => Some(a.total_cmp(b)),
        _ => None,
    }
}

/// Structured conditions combined with all / any.
struct Conditions {
    checks: Vec<Check>,
    any: bool,
}

impl Conditions {
    #[inline]
    fn matches(&self, r: &Record) -> bool {
        if self.any {
            self.checks.iter().any(|c| c.passes(r))
        } else {
            self.checks.iter().all(|c| c.passes(r))
        }
    }
}

/// A compiled Rhai expression with the scope reused across records.
struct Expression {
    sandbox: Sandbox,
    expr: FieldExpression,
    scope: Scope<'static>,
}

impl Expression {
    fn matches(&mut self, r: &Record) -> Result<bool, String> {
        let v = self.expr.eval(&self.sandbox, &mut self.scope, r)?;
        v.as_bool().map_err(|t| format!("the expression gave {t}, not a bool"))
    }
}

/// What decides whether a record passes.
enum Predicate {
    Conditions(Conditions),
    Expression(Box<Expression>),
}

impl Predicate {
    fn new(p: &Params) -> Result<Self, NodeError> {
        match p.mode {
            Mode::Conditions => {
                if p.conditions.is_empty() {
                    return Err(NodeError::params(
                        "params.conditions: at least one condition is required in conditions mode",
                    ));
                }
                let checks = p
                    .conditions
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Check::compile(i, c))
                    .collect::<Result<_, _>>()?;
                Ok(Predicate::Conditions(Conditions { checks, any: p.match_mode == Match::Any }))
            }
            Mode::Expression => {
                if p.expression.trim().is_empty() {
                    return Err(NodeError::params(
                        "params.expression: an expression is required in expression mode",
                    ));
                }
                let sandbox = Sandbox::new(p.max_operations);
                let expr = FieldExpression::compile(&sandbox, "expression", &p.expression)?;
                Ok(Predicate::Expression(Box::new(Expression { sandbox, expr, scope: Scope::new() })))
            }
        }
    }

    /// Whether record number `index` (of this node's input) passes; an error is that record's.
    fn matches(&mut self, index: u64, r: &Record) -> Result<bool, NodeError> {
        match self {
            Predicate::Conditions(c) => Ok(c.matches(r)),
            Predicate::Expression(e) => {
                e.matches(r).map_err(|m| NodeError::record(format!("record {index}: {m}")))
            }
        }
    }
}

struct FilterOp {
    predicate: Predicate,
    /// Records received so far, to number records in error messages.
    seen: u64,
}

#[async_trait]
impl Operator for FilterOp {
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let mut b = std::mem::take(batch);
        let first = self.seen;
        self.seen += b.len() as u64;
        if let Predicate::Conditions(c) = &self.predicate {
            // The hot path: filter the batch in place, no allocation.
            b.retain(|r| c.matches(r));
            out.emit_batch(b);
            return Ok(());
        }
        let mut index = first;
        let mut failure = None;
        // In place, keeping the order; a rejected record is taken out of the batch.
        b.retain_mut(|r| {
            let i = index;
            index += 1;
            if failure.is_some() {
                return false;
            }
            match self.predicate.matches(i, r) {
                Ok(keep) => keep,
                Err(e) => {
                    if let Err(f) = out.reject(std::mem::take(r), e) {
                        failure = Some(f);
                    }
                    false
                }
            }
        });
        if let Some(f) = failure {
            return Err(f);
        }
        out.emit_batch(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flow_model::{Catalog, FieldType};
    use serde_json::json;

    use super::*;

    fn people() -> Vec<Record> {
        vec![
            Record::from([
                ("name", "ann".into()),
                ("age", 31.into()),
                ("status", "active".into()),
                ("tags", Value::Array(vec!["a".into(), "b".into()])),
            ]),
            Record::from([("name", "bob".into()), ("age", 19.into()), ("status", "idle".into())]),
            Record::from([("name", "cyd".into()), ("age", Value::Float(25.0)), ("status", Value::Null)]),
            Record::from([("name", "dee".into()), ("age", "old".into())]),
        ]
    }

    fn predicate(params: serde_json::Value) -> Result<Predicate, NodeError> {
        Predicate::new(&decode::<Params>(&params)?)
    }

    /// Names of the records that pass.
    fn run(params: serde_json::Value) -> Vec<String> {
        let mut p = predicate(params).expect("valid params");
        people()
            .iter()
            .enumerate()
            .filter(|(i, r)| p.matches(*i as u64, r).expect("no record error"))
            .map(|(_, r)| r.get("name").map(ToString::to_string).unwrap_or_default())
            .collect()
    }

    fn cond(field: &str, op: &str, value: serde_json::Value) -> serde_json::Value {
        json!({"conditions": [{"field": field, "op": op, "value": value}]})
    }

    #[test]
    fn equality_treats_ints_and_floats_alike() {
        assert_eq!(run(cond("status", "eq", json!("active"))), ["ann"]);
        assert_eq!(run(cond("age", "eq", json!(25))), ["cyd"]);
        assert_eq!(run(cond("status", "ne", json!("active"))), ["bob", "cyd", "dee"]);
    }

    #[test]
    fn ordering_skips_incomparable_values() {
        assert_eq!(run(cond("age", "gt", json!(25))), ["ann"]);
        assert_eq!(run(cond("age", "gte", json!(25))), ["ann", "cyd"]);
        assert_eq!(run(cond("age", "lt", json!(25.5))), ["bob", "cyd"]);
        assert_eq!(run(cond("age", "lte", json!(19))), ["bob"]);
        assert_eq!(run(cond("name", "gt", json!("bz"))), ["cyd", "dee"]);
        assert_eq!(run(cond("status", "lt", json!(5))), Vec::<String>::new());
    }

    #[test]
    fn string_and_list_operators() {
        assert_eq!(run(cond("name", "contains", json!("o"))), ["bob"]);
        assert_eq!(run(cond("tags", "contains", json!("b"))), ["ann"]);
        assert_eq!(run(cond("status", "starts_with", json!("ac"))), ["ann"]);
        assert_eq!(run(cond("status", "ends_with", json!("le"))), ["bob"]);
        assert_eq!(run(cond("age", "in", json!([19, 25.0]))), ["bob", "cyd"]);
        assert_eq!(run(cond("status", "not_in", json!(["active", null]))), ["bob"]);
    }

    #[test]
    fn missing_fields_are_null() {
        let is_null = json!({"conditions": [{"field": "status", "op": "is_null"}]});
        assert_eq!(run(is_null), ["cyd", "dee"]);
        let not_null = json!({"conditions": [{"field": "status", "op": "is_not_null"}]});
        assert_eq!(run(not_null), ["ann", "bob"]);
    }

    #[test]
    fn nan_orders_with_nothing() {
        let nan = Value::Float(f64::NAN);
        assert_eq!(ordered(&Value::Float(1.0), &nan), None);
        assert_eq!(ordered(&nan, &Value::Int(1)), None);
        assert_eq!(ordered(&Value::Float(1.0), &Value::Int(2)), Some(Ordering::Less));
    }

    #[test]
    fn all_and_any_combine_conditions() {
        let conditions = json!([
            {"field": "age", "op": "gte", "value": 19},
            {"field": "status", "op": "is_not_null"}
        ]);
        assert_eq!(run(json!({"conditions": conditions})), ["ann", "bob"]);
        assert_eq!(run(json!({"match": "any", "conditions": conditions})), ["ann", "bob", "cyd"]);
    }

    #[test]
    fn expression_mode_uses_fields_as_variables() {
        let p = json!({"mode": "expression", "expression": "age * 2 > 40 && name != \"ann\""});
        let mut pred = predicate(p).expect("valid");
        let r = people();
        assert_eq!(pred.matches(0, &r[0]), Ok(false));
        assert_eq!(pred.matches(1, &r[1]), Ok(false));
        assert_eq!(pred.matches(2, &r[2]), Ok(true));
        // A string times a number has no meaning in Rhai: an error for that record.
        let err = pred.matches(3, &r[3]).expect_err("type error");
        assert_eq!(err.kind, flow_runtime::ErrorKind::Record);
        assert!(err.message.starts_with("record 3: "), "{}", err.message);
    }

    #[test]
    fn expression_errors_for_missing_fields_non_bools_and_runaway_loops() {
        let mut pred =
            predicate(json!({"mode": "expression", "expression": "status == \"active\""})).expect("valid");
        let err = pred.matches(7, &people()[3]).expect_err("no status");
        assert!(err.message.starts_with("record 7: ") && err.message.contains("status"), "{}", err.message);

        let mut pred = predicate(json!({"mode": "expression", "expression": "age + 1"})).expect("valid");
        let err = pred.matches(0, &people()[0]).expect_err("not a bool");
        assert_eq!(err.message, "record 0: the expression gave i64, not a bool");

        let spin = json!({"mode": "expression", "max_operations": 50, "expression": "{ let n = 0; while true { n += 1 }; true }"});
        assert!(predicate(spin).is_err(), "statement blocks are not expressions");
        // Expressions cannot loop, but a long one still counts every operation.
        let long = format!("{} > 0", vec!["age"; 30].join(" + "));
        let spin = json!({"mode": "expression", "max_operations": 20, "expression": long});
        let err = predicate(spin).expect("valid").matches(0, &people()[0]).expect_err("bounded");
        assert!(err.message.contains("max_operations (20)"), "{}", err.message);
    }

    #[test]
    fn build_validates_params() {
        let err = |p| predicate(p).err().map(|e| e.message).unwrap_or_default();
        assert!(err(json!({})).starts_with("params.conditions: "));
        assert!(err(json!({"mode": "expression"})).starts_with("params.expression: "));
        assert!(err(json!({"mode": "expression", "expression": "a >"})).starts_with("params.expression: "));
        assert!(
            err(cond("a", "in", json!(3))).starts_with("params.conditions[0].value: in / not_in need a list")
        );
        assert!(
            err(cond("a", "starts_with", json!(3)))
                .starts_with("params.conditions[0].value: starts_with / ends_with need a string")
        );
        let missing = json!({"conditions": [{"field": "a", "op": "eq"}]});
        assert!(err(missing).starts_with("params.conditions[0].value: required"));
    }

    #[test]
    fn schema_accepts_documented_params_and_fields_are_reported() {
        let catalog = Catalog::new([Arc::new(Filter) as Arc<dyn NodeSpec>]).expect("valid schema");
        let p = json!({"match": "any", "conditions": [
            {"field": "age", "op": "gt", "value": 3},
            {"field": "name", "op": "gt", "value": "m"},
            {"field": "status", "op": "is_null"}
        ]});
        assert_eq!(catalog.check_params("filter", &p), Vec::new());
        let props = &Filter.descriptor().params_schema["properties"];
        let defaults = ["mode", "match", "conditions", "max_operations"].map(|k| props[k]["default"].clone());
        assert_eq!(defaults, [json!("conditions"), json!("all"), json!([]), json!(10_000)]);
        assert!(
            !catalog
                .check_params("filter", &json!({"conditions": [{"field": "a", "op": "like"}]}))
                .is_empty()
        );
        let refs = Filter.referenced_fields(&p);
        let refs: Vec<_> = refs.iter().map(|r| (r.field.as_str(), r.param.as_str(), r.numeric)).collect();
        assert_eq!(
            refs,
            [
                ("age", "/conditions/0/field", true),
                ("name", "/conditions/1/field", false),
                ("status", "/conditions/2/field", false)
            ]
        );
        assert!(Filter.referenced_fields(&json!({"mode": "expression", "expression": "a > 1"})).is_empty());

        let input = RecordSchema::new([("age".to_owned(), FieldType::Int)]);
        assert_eq!(Filter.output_schema("out", &p, &[Some(input.clone())]), Some(input));
    }
}
