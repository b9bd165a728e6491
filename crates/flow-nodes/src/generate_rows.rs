//! Generate Rows: N records built from a template of per-field generators, deterministic for a
//! given seed. For demos, tests and benchmarks.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use compact_str::CompactString;
use flow_model::{Category, FieldType, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema, Value};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, peek, schema_of};

/// How one field's value is made for row number `n` (0-based).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Generator {
    /// `start + n`.
    Sequence { start: i64 },
    /// The text with every `{n}` replaced by the row number.
    Pattern(String),
    /// Values taken in turn.
    Cycle(Vec<serde_json::Value>),
    /// A pseudo-random integer in `[min, max]`, repeatable for a given seed.
    RandomInt { min: i64, max: i64 },
    /// The same value on every row.
    Value(serde_json::Value),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Rows to generate.
    #[schemars(range(min = 0))]
    count: u64,
    /// Field name -> generator, e.g. `{"id": {"sequence": {"start": 1}}, "name": {"pattern": "user-{n}"}}`.
    fields: BTreeMap<String, Generator>,
    /// Seed of the random generators.
    #[serde(default = "default_seed")]
    seed: u64,
}

fn default_seed() -> u64 {
    42
}

impl Generator {
    fn field_type(&self) -> FieldType {
        match self {
            Generator::Sequence { .. } | Generator::RandomInt { .. } => FieldType::Int,
            Generator::Pattern(_) => FieldType::String,
            Generator::Cycle(values) => {
                let types: Vec<FieldType> = values.iter().map(|v| FieldType::of(&Value::from(v))).collect();
                match types.first() {
                    Some(t) if types.iter().all(|x| x == t) => *t,
                    _ => FieldType::Any,
                }
            }
            Generator::Value(v) => FieldType::of(&Value::from(v)),
        }
    }
}

pub(crate) struct GenerateRows;

impl NodeSpec for GenerateRows {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "generate_rows".into(),
            title: "Generate Rows".into(),
            category: Category::Source,
            description:
                "Generates N records from per-field generators (sequence, pattern, cycle, random_int, value)."
                    .into(),
            inputs: vec![],
            outputs: vec![PortSpec::output("out", "Generated records")],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }

    fn output_schema(
        &self,
        _port: &str,
        params: &serde_json::Value,
        _inputs: &[Option<RecordSchema>],
    ) -> Option<RecordSchema> {
        let p: Params = peek(params)?;
        Some(RecordSchema::new(p.fields.iter().map(|(k, g)| (k.clone(), g.field_type()))))
    }
}

impl NodeType for GenerateRows {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        let mut fields = Vec::with_capacity(p.fields.len());
        for (name, g) in p.fields {
            let compiled = match g {
                Generator::Sequence { start } => Compiled::Sequence(start),
                Generator::Pattern(text) => {
                    let parts: Vec<CompactString> = text.split("{n}").map(CompactString::from).collect();
                    Compiled::Pattern(parts)
                }
                Generator::Cycle(values) if values.is_empty() => {
                    return Err(NodeError::params(format!(
                        "params.fields.{name}.cycle: needs at least one value"
                    )));
                }
                Generator::Cycle(values) => Compiled::Cycle(values.iter().map(Value::from).collect()),
                Generator::RandomInt { min, max } if min > max => {
                    return Err(NodeError::params(format!(
                        "params.fields.{name}.random_int: min {min} > max {max}"
                    )));
                }
                Generator::RandomInt { min, max } => Compiled::RandomInt(min, max),
                Generator::Value(v) => Compiled::Constant(Value::from(&v)),
            };
            fields.push((CompactString::from(name), compiled));
        }
        Ok(Box::new(GenerateOp {
            fields,
            next: 0,
            count: p.count,
            batch_size: ctx.batch_size.max(1) as u64,
            rng: fastrand::Rng::with_seed(p.seed),
        }))
    }
}

enum Compiled {
    Sequence(i64),
    Pattern(Vec<CompactString>),
    Cycle(Vec<Value>),
    RandomInt(i64, i64),
    Constant(Value),
}

struct GenerateOp {
    fields: Vec<(CompactString, Compiled)>,
    next: u64,
    count: u64,
    batch_size: u64,
    rng: fastrand::Rng,
}

impl GenerateOp {
    fn row(&mut self, n: u64) -> Record {
        let GenerateOp { fields, rng, .. } = self;
        // Collected straight into the record's field list: building each field apart and
        // pushing it moved every value through the stack twice, most of this node's time.
        Record::from_distinct(
            fields
                .iter()
                .map(|(name, g)| {
                    let v = match g {
                        Compiled::Sequence(start) => Value::Int(start.wrapping_add(n as i64)),
                        Compiled::Pattern(parts) => {
                            let mut s = CompactString::default();
                            for (i, part) in parts.iter().enumerate() {
                                if i > 0 {
                                    // Into `s` itself: no string per number.
                                    let _ = write!(s, "{n}");
                                }
                                s.push_str(part);
                            }
                            Value::String(s)
                        }
                        Compiled::Cycle(values) => values[(n % values.len() as u64) as usize].clone(),
                        Compiled::RandomInt(min, max) => Value::Int(rng.i64(*min..=*max)),
                        Compiled::Constant(v) => v.clone(),
                    };
                    (name.clone(), v)
                })
                .collect(),
        )
    }
}

#[async_trait]
impl Operator for GenerateOp {
    async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        let end = (self.next + self.batch_size).min(self.count);
        let mut batch = Vec::with_capacity((end - self.next) as usize);
        for n in self.next..end {
            batch.push(self.row(n));
        }
        self.next = end;
        out.emit_batch(batch);
        Ok(self.next < self.count)
    }
}
