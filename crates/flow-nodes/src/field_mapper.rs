//! Field Mapper: reshapes each record in place with an ordered list of operations (rename,
//! compute with a Rhai expression, drop, cast), then optionally keeps only some fields. The
//! output schema follows from the input schema by applying the same operations.

use async_trait::async_trait;
use compact_str::{CompactString, ToCompactString};
use flow_model::{
    Batch, Category, FieldRef, FieldType, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema, Value,
};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use rhai::Scope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::params::{decode, peek, schema_of};
use crate::script::{FieldExpression, Sandbox, from_dynamic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum CastType {
    Int,
    Float,
    String,
    Bool,
}

impl CastType {
    fn name(self) -> &'static str {
        match self {
            CastType::Int => "int",
            CastType::Float => "float",
            CastType::String => "string",
            CastType::Bool => "bool",
        }
    }

    fn field_type(self) -> FieldType {
        match self {
            CastType::Int => FieldType::Int,
            CastType::Float => FieldType::Float,
            CastType::String => FieldType::String,
            CastType::Bool => FieldType::Bool,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Operation {
    /// Renames field `from` to `to`, keeping its position; a field already named `to` is
    /// replaced. A record without `from` is an error.
    Rename { from: String, to: String },
    /// Sets `field` to the value of a Rhai expression in which the record's fields (as the earlier
    /// operations left them) are variables, e.g. `age * 2`.
    Compute { field: String, expression: String },
    /// Removes `field`; a record without it is left as it is.
    Drop { field: String },
    /// Converts `field` to another type: numbers and numeric text to int (truncating) or float,
    /// anything to string, numbers and true/false/yes/no/1/0 to bool. Null stays null; a record
    /// without the field, or whose value does not convert, is an error.
    Cast { field: String, to: CastType },
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Applied in order to each record.
    #[serde(default)]
    operations: Vec<Operation>,
    /// After the operations, keep only these fields, in this order (missing ones are skipped).
    #[serde(default)]
    keep_only: Option<Vec<String>>,
    /// Most operations one `compute` expression may take per record.
    #[serde(default = "default_max_operations")]
    #[schemars(range(min = 1))]
    max_operations: u64,
}

fn default_max_operations() -> u64 {
    10_000
}

pub(crate) struct FieldMapper;

impl NodeSpec for FieldMapper {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "field_mapper".into(),
            title: "Field Mapper".into(),
            category: Category::Transform,
            description: "Renames, computes (Rhai expressions over the fields), drops and casts fields, in order, then \
                          optionally keeps only listed fields. A record an operation fails on is an error: routed to \
                          `error` (with the operations before the failing one applied) or failing the node."
                .into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "Mapped records"), PortSpec::error_output()],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }

    fn output_schema(
        &self,
        _port: &str,
        params: &serde_json::Value,
        inputs: &[Option<RecordSchema>],
    ) -> Option<RecordSchema> {
        let p = peek::<Params>(params)?;
        let mut schema = inputs.first().cloned().flatten()?;
        for op in &p.operations {
            match op {
                Operation::Rename { from, to } => schema.rename(from, to),
                Operation::Compute { field, .. } => schema.set(field, FieldType::Any),
                Operation::Drop { field } => schema.remove(field),
                Operation::Cast { field, to } => {
                    if schema.contains(field) {
                        schema.set(field, to.field_type());
                    }
                }
            }
        }
        if let Some(keep) = &p.keep_only {
            let mut kept = RecordSchema::default();
            for name in keep {
                if let Some(f) = schema.get(name)
                    && !kept.contains(name)
                {
                    kept.fields.push(f.clone());
                }
            }
            schema = kept;
        }
        Some(schema)
    }

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<Params>(params) else { return Vec::new() };
        // Fields an earlier operation produced need not come from the input.
        let mut produced: Vec<&str> = Vec::new();
        let mut refs = Vec::new();
        let mut input_field = |field: &str, param: String, produced: &[&str]| {
            if !produced.contains(&field) {
                refs.push(FieldRef { port: "in".into(), field: field.to_owned(), param, numeric: false });
            }
        };
        for (i, op) in p.operations.iter().enumerate() {
            match op {
                Operation::Rename { from, to } => {
                    input_field(from, format!("/operations/{i}/from"), &produced);
                    produced.push(to);
                }
                Operation::Compute { field, .. } => produced.push(field),
                Operation::Drop { field } | Operation::Cast { field, .. } => {
                    input_field(field, format!("/operations/{i}/field"), &produced);
                }
            }
        }
        refs
    }
}

impl NodeType for FieldMapper {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(FieldMapperOp { mapper: Mapper::new(&p)?, seen: 0 }))
    }
}

/// An operation ready to run: names converted once, expressions compiled once.
enum Step {
    Rename { from: CompactString, to: CompactString },
    Compute { field: CompactString, expr: FieldExpression },
    Drop { field: CompactString },
    Cast { field: CompactString, to: CastType },
}

struct Mapper {
    steps: Vec<Step>,
    keep_only: Option<Vec<CompactString>>,
    sandbox: Sandbox,
    scope: Scope<'static>,
}

impl Mapper {
    fn new(p: &Params) -> Result<Self, NodeError> {
        let sandbox = Sandbox::new(p.max_operations);
        let steps = p
            .operations
            .iter()
            .enumerate()
            .map(|(i, op)| {
                Ok(match op {
                    Operation::Rename { from, to } => Step::Rename { from: from.into(), to: to.into() },
                    Operation::Compute { field, expression } => Step::Compute {
                        field: field.into(),
                        expr: FieldExpression::compile(
                            &sandbox,
                            &format!("operations[{i}].expression"),
                            expression,
                        )?,
                    },
                    Operation::Drop { field } => Step::Drop { field: field.into() },
                    Operation::Cast { field, to } => Step::Cast { field: field.into(), to: *to },
                })
            })
            .collect::<Result<_, NodeError>>()?;
        let keep_only = p.keep_only.as_ref().map(|names| names.iter().map(CompactString::from).collect());
        Ok(Self { steps, keep_only, sandbox, scope: Scope::new() })
    }

    /// Applies the operations to record number `index` (of this node's input), in place.
    fn apply(&mut self, index: u64, r: &mut Record) -> Result<(), NodeError> {
        for (i, step) in self.steps.iter().enumerate() {
            let failed = |what: String| NodeError::record(format!("record {index}: operations[{i}] {what}"));
            match step {
                Step::Rename { from, to } => {
                    if !r.rename(from, to) {
                        return Err(failed(format!(
                            "(rename `{from}` to `{to}`): the record has no field `{from}`"
                        )));
                    }
                }
                Step::Compute { field, expr } => {
                    let v = expr
                        .eval(&self.sandbox, &mut self.scope, r)
                        .and_then(from_dynamic)
                        .map_err(|m| failed(format!("(compute `{field}`): {m}")))?;
                    r.insert(field.clone(), v);
                }
                Step::Drop { field } => {
                    r.remove(field);
                }
                Step::Cast { field, to } => {
                    let what = || format!("(cast `{field}` to {})", to.name());
                    let Some(v) = r.get_mut(field) else {
                        return Err(failed(format!("{}: the record has no field `{field}`", what())));
                    };
                    cast(v, *to).map_err(|m| failed(format!("{}: {m}", what())))?;
                }
            }
        }
        if let Some(keep) = &self.keep_only {
            r.keep_only(keep);
        }
        Ok(())
    }
}

/// Converts `v` to type `to` in place; null stays null.
fn cast(v: &mut Value, to: CastType) -> Result<(), String> {
    let new = match (to, &*v) {
        (_, Value::Null)
        | (CastType::Int, Value::Int(_))
        | (CastType::Float, Value::Float(_))
        | (CastType::String, Value::String(_))
        | (CastType::Bool, Value::Bool(_)) => return Ok(()),
        (CastType::Int, Value::Float(f)) => Value::Int(float_to_int(*f)?),
        (CastType::Int, Value::Bool(b)) => Value::Int(i64::from(*b)),
        (CastType::Int, Value::String(s)) => {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Int(float_to_int(parse_float(t, to)?)?),
            }
        }
        (CastType::Float, Value::Int(i)) => Value::Float(*i as f64),
        (CastType::Float, Value::Bool(b)) => Value::Float(f64::from(u8::from(*b))),
        (CastType::Float, Value::String(s)) => Value::Float(parse_float(s.trim(), to)?),
        (CastType::String, other) => Value::String(other.to_compact_string()),
        (CastType::Bool, Value::Int(i)) => Value::Bool(*i != 0),
        (CastType::Bool, Value::Float(f)) => Value::Bool(*f != 0.0),
        (CastType::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(format!("cannot cast {s:?} to bool")),
        },
        (_, other) => {
            return Err(format!("cannot cast a value of type {} to {}", other.type_name(), to.name()));
        }
    };
    *v = new;
    Ok(())
}

fn parse_float(s: &str, to: CastType) -> Result<f64, String> {
    s.parse::<f64>().map_err(|_| format!("cannot cast {s:?} to {}", to.name()))
}

/// Truncates towards zero; NaN, infinities and values beyond the int range do not convert.
fn float_to_int(f: f64) -> Result<i64, String> {
    // `i64::MAX as f64` is 2^63, itself out of range, hence the strict upper bound.
    if f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Ok(f.trunc() as i64)
    } else {
        Err(format!("{f} is out of the int range"))
    }
}

struct FieldMapperOp {
    mapper: Mapper,
    /// Records received so far, to number records in error messages.
    seen: u64,
}

#[async_trait]
impl Operator for FieldMapperOp {
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let mut b = std::mem::take(batch);
        let mut index = self.seen;
        self.seen += b.len() as u64;
        let mut failure = None;
        // In place, keeping the order; a rejected record is taken out of the batch.
        b.retain_mut(|r| {
            let i = index;
            index += 1;
            if failure.is_some() {
                return false;
            }
            match self.mapper.apply(i, r) {
                Ok(()) => true,
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

    use flow_model::Catalog;
    use serde_json::json;

    use super::*;

    fn mapper(params: serde_json::Value) -> Mapper {
        Mapper::new(&decode::<Params>(&params).expect("decodes")).expect("builds")
    }

    fn person() -> Record {
        Record::from([("name", "ann".into()), ("age", "31".into()), ("city", "oslo".into())])
    }

    #[test]
    fn operations_apply_in_order_in_place() {
        let mut m = mapper(json!({"operations": [
            {"op": "rename", "from": "name", "to": "full_name"},
            {"op": "cast", "field": "age", "to": "int"},
            {"op": "compute", "field": "next", "expression": "age + 1"},
            {"op": "compute", "field": "label", "expression": "full_name + \"@\" + city"},
            {"op": "drop", "field": "city"},
            {"op": "drop", "field": "absent"}
        ]}));
        let mut r = person();
        m.apply(0, &mut r).expect("maps");
        let expected = Record::from([
            ("full_name", "ann".into()),
            ("age", 31.into()),
            ("next", 32.into()),
            ("label", "ann@oslo".into()),
        ]);
        assert_eq!(r, expected);
    }

    #[test]
    fn keep_only_orders_and_skips_missing() {
        let mut m = mapper(json!({"keep_only": ["city", "nope", "name"]}));
        let mut r = person();
        m.apply(0, &mut r).expect("maps");
        assert_eq!(r, Record::from([("city", "oslo".into()), ("name", "ann".into())]));
    }

    #[test]
    fn casts_convert_between_types() {
        let cases: &[(Value, CastType, Value)] = &[
            ("42".into(), CastType::Int, 42.into()),
            (" 2.9 ".into(), CastType::Int, 2.into()),
            (Value::Float(-2.9), CastType::Int, (-2).into()),
            (true.into(), CastType::Int, 1.into()),
            ("1.5".into(), CastType::Float, Value::Float(1.5)),
            (3.into(), CastType::Float, Value::Float(3.0)),
            (3.into(), CastType::String, "3".into()),
            (Value::Array(vec![1.into()]), CastType::String, "[1]".into()),
            ("Yes".into(), CastType::Bool, true.into()),
            (0.into(), CastType::Bool, false.into()),
            (Value::Null, CastType::Int, Value::Null),
        ];
        for (from, to, expected) in cases {
            let mut v = from.clone();
            cast(&mut v, *to).expect("casts");
            assert_eq!(&v, expected, "{from:?} to {to:?}");
        }
        assert!(cast(&mut Value::Float(f64::NAN), CastType::Int).is_err());
        assert!(cast(&mut Value::Float(1e19), CastType::Int).is_err());
        assert!(cast(&mut "maybe".into(), CastType::Bool).is_err());
        assert!(cast(&mut Value::Object(Record::new()), CastType::Float).is_err());
    }

    #[test]
    fn failures_name_record_operation_and_field() {
        let mut m = mapper(
            json!({"operations": [{"op": "drop", "field": "city"}, {"op": "cast", "field": "name", "to": "int"}]}),
        );
        let err = m.apply(4, &mut person()).expect_err("abc is no int");
        assert_eq!(err.kind, flow_runtime::ErrorKind::Record);
        assert_eq!(err.message, "record 4: operations[1] (cast `name` to int): cannot cast \"ann\" to int");

        let mut m = mapper(json!({"operations": [{"op": "cast", "field": "zip", "to": "int"}]}));
        let err = m.apply(0, &mut person()).expect_err("missing");
        assert_eq!(err.message, "record 0: operations[0] (cast `zip` to int): the record has no field `zip`");

        let mut m = mapper(json!({"operations": [{"op": "rename", "from": "zip", "to": "code"}]}));
        let err = m.apply(2, &mut person()).expect_err("missing");
        assert_eq!(
            err.message,
            "record 2: operations[0] (rename `zip` to `code`): the record has no field `zip`"
        );

        let mut m = mapper(json!({"operations": [{"op": "compute", "field": "x", "expression": "age * 2"}]}));
        let err = m.apply(1, &mut person()).expect_err("string times int");
        assert!(err.message.starts_with("record 1: operations[0] (compute `x`): "), "{}", err.message);
    }

    #[test]
    fn build_reports_bad_expressions_by_param() {
        let p = decode::<Params>(&json!({"operations": [
            {"op": "drop", "field": "a"},
            {"op": "compute", "field": "x", "expression": "1 +"}
        ]}))
        .expect("decodes");
        let err = Mapper::new(&p).err().map(|e| e.message).unwrap_or_default();
        assert!(err.starts_with("params.operations[1].expression: "), "{err}");
        let err = decode::<Params>(&json!({"operations": [{"op": "drop", "field": "a", "to": "b"}]}));
        assert!(err.is_err(), "unknown keys are refused");
    }

    #[test]
    fn output_schema_follows_the_operations() {
        let params = json!({"operations": [
            {"op": "rename", "from": "name", "to": "full_name"},
            {"op": "cast", "field": "age", "to": "int"},
            {"op": "compute", "field": "score", "expression": "age * 2"},
            {"op": "drop", "field": "city"},
            {"op": "cast", "field": "ghost", "to": "int"}
        ]});
        let input = RecordSchema::new([
            ("name".to_owned(), FieldType::String),
            ("age".to_owned(), FieldType::String),
            ("city".to_owned(), FieldType::String),
        ]);
        let expected = RecordSchema::new([
            ("full_name".to_owned(), FieldType::String),
            ("age".to_owned(), FieldType::Int),
            ("score".to_owned(), FieldType::Any),
        ]);
        assert_eq!(FieldMapper.output_schema("out", &params, &[Some(input.clone())]), Some(expected));
        assert_eq!(FieldMapper.output_schema("out", &params, &[None]), None);

        let keep = json!({"operations": [], "keep_only": ["city", "city", "zzz", "name"]});
        let expected = RecordSchema::new([
            ("city".to_owned(), FieldType::String),
            ("name".to_owned(), FieldType::String),
        ]);
        assert_eq!(FieldMapper.output_schema("out", &keep, &[Some(input)]), Some(expected));
    }

    #[test]
    fn referenced_fields_skip_produced_ones() {
        let params = json!({"operations": [
            {"op": "rename", "from": "a", "to": "b"},
            {"op": "cast", "field": "b", "to": "int"},
            {"op": "compute", "field": "c", "expression": "1"},
            {"op": "drop", "field": "c"},
            {"op": "cast", "field": "d", "to": "float"},
            {"op": "drop", "field": "e"}
        ]});
        let refs = FieldMapper.referenced_fields(&params);
        let refs: Vec<_> = refs.iter().map(|r| (r.field.as_str(), r.param.as_str())).collect();
        assert_eq!(
            refs,
            [("a", "/operations/0/from"), ("d", "/operations/4/field"), ("e", "/operations/5/field")]
        );
    }

    #[test]
    fn schema_accepts_documented_params() {
        let catalog = Catalog::new([Arc::new(FieldMapper) as Arc<dyn NodeSpec>]).expect("valid schema");
        let p = json!({"operations": [
            {"op": "rename", "from": "name", "to": "full_name"},
            {"op": "compute", "field": "x", "expression": "age * 2"},
            {"op": "drop", "field": "y"},
            {"op": "cast", "field": "age", "to": "int"}
        ], "keep_only": ["x"], "max_operations": 100});
        assert_eq!(catalog.check_params("field_mapper", &p), Vec::new());
        let props = &FieldMapper.descriptor().params_schema["properties"];
        assert_eq!(props["operations"]["default"], json!([]));
        let bad = json!({"operations": [{"op": "cast", "field": "age", "to": "date"}]});
        assert!(!catalog.check_params("field_mapper", &bad).is_empty());
    }
}
