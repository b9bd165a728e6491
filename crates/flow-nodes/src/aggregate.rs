//! Aggregate: group by fields and compute count, sum, avg, min and max per group. Holds one
//! accumulator per group, so memory grows with the number of groups, not of records. Groups are
//! emitted in key order when the input ends.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use async_trait::async_trait;
use compact_str::CompactString;
use flow_model::{
    Batch, Category, FieldRef, FieldType, NodeDescriptor, NodeSpec, PortSpec, Record, RecordSchema, Value,
};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, peek, schema_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Function {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Aggregation {
    #[serde(rename = "fn")]
    function: Function,
    /// Input field; not needed for `count`.
    #[serde(default)]
    field: Option<String>,
    /// Output field name.
    #[serde(rename = "as")]
    output: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Fields whose values form the group key; empty for one group over all records.
    #[serde(default)]
    group_by: Vec<String>,
    #[schemars(length(min = 1))]
    aggregations: Vec<Aggregation>,
}

pub(crate) struct Aggregate;

impl NodeSpec for Aggregate {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "aggregate".into(),
            title: "Aggregate".into(),
            category: Category::Transform,
            description: "Groups records by fields and computes count, sum, avg, min, max per group.".into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "One record per group"), PortSpec::error_output()],
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
        let p: Params = peek(params)?;
        let input = inputs.first().cloned().flatten();
        let type_of =
            |f: &str| input.as_ref().and_then(|s| s.get(f)).map_or(FieldType::Any, |f| f.field_type);
        let mut fields: Vec<(String, FieldType)> =
            p.group_by.iter().map(|g| (g.clone(), type_of(g))).collect();
        for a in &p.aggregations {
            let t = match a.function {
                Function::Count => FieldType::Int,
                Function::Avg => FieldType::Float,
                Function::Sum => match a.field.as_deref().map(type_of) {
                    Some(FieldType::Int) => FieldType::Int,
                    _ => FieldType::Float,
                },
                Function::Min | Function::Max => a.field.as_deref().map_or(FieldType::Any, type_of),
            };
            fields.push((a.output.clone(), t));
        }
        Some(RecordSchema::new(fields))
    }

    fn referenced_fields(&self, params: &serde_json::Value) -> Vec<FieldRef> {
        let Some(p) = peek::<Params>(params) else { return Vec::new() };
        let group = p.group_by.iter().enumerate().map(|(i, f)| FieldRef {
            port: "in".into(),
            field: f.clone(),
            param: format!("/group_by/{i}"),
            numeric: false,
        });
        let aggs = p.aggregations.iter().enumerate().filter_map(|(i, a)| {
            Some(FieldRef {
                port: "in".into(),
                field: a.field.clone()?,
                param: format!("/aggregations/{i}/field"),
                numeric: matches!(a.function, Function::Sum | Function::Avg),
            })
        });
        group.chain(aggs).collect()
    }
}

impl NodeType for Aggregate {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        for (i, a) in p.aggregations.iter().enumerate() {
            if a.function != Function::Count && a.field.is_none() {
                return Err(NodeError::params(format!(
                    "params.aggregations[{i}].field: required for {:?}",
                    a.function
                )));
            }
        }
        Ok(Box::new(AggregateOp { params: p, groups: BTreeMap::new(), seen: 0 }))
    }
}

/// A group key ordered by `Value::total_cmp`.
#[derive(Debug, Clone, PartialEq)]
struct Key(Vec<Value>);

impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(&other.0) {
            let o = a.total_cmp(b);
            if o != Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    Sum { int: i64, float: f64, any_float: bool },
    Avg { sum: f64, n: u64 },
    Extreme(Option<Value>),
}

struct AggregateOp {
    params: Params,
    groups: BTreeMap<Key, Vec<Acc>>,
    seen: u64,
}

impl AggregateOp {
    fn fresh(&self) -> Vec<Acc> {
        self.params
            .aggregations
            .iter()
            .map(|a| match a.function {
                Function::Count => Acc::Count(0),
                Function::Sum => Acc::Sum { int: 0, float: 0.0, any_float: false },
                Function::Avg => Acc::Avg { sum: 0.0, n: 0 },
                Function::Min | Function::Max => Acc::Extreme(None),
            })
            .collect()
    }

    /// Checks a record against the numeric aggregations before it touches any accumulator.
    fn check(&self, record: &Record) -> Result<(), String> {
        for (i, a) in self.params.aggregations.iter().enumerate() {
            if matches!(a.function, Function::Sum | Function::Avg)
                && let Some(f) = &a.field
            {
                match record.get(f) {
                    Some(Value::Int(_) | Value::Float(_) | Value::Null) | None => {}
                    Some(v) => {
                        return Err(format!(
                            "aggregations[{i}]: field `{f}` is {} `{v}`, a number is needed",
                            v.type_name()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Operator for AggregateOp {
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        for record in std::mem::take(batch) {
            self.seen += 1;
            if let Err(msg) = self.check(&record) {
                out.reject(record, NodeError::record(format!("record {}: {msg}", self.seen)))?;
                continue;
            }
            let key = Key(self
                .params
                .group_by
                .iter()
                .map(|f| record.get(f).cloned().unwrap_or_default())
                .collect());
            if !self.groups.contains_key(&key) {
                let fresh = self.fresh();
                self.groups.insert(key.clone(), fresh);
            }
            let Some(accs) = self.groups.get_mut(&key) else { continue };
            for (acc, a) in accs.iter_mut().zip(&self.params.aggregations) {
                let v = a.field.as_deref().and_then(|f| record.get(f));
                match acc {
                    Acc::Count(n) => *n += 1,
                    Acc::Sum { int, float, any_float } => match v {
                        Some(Value::Int(i)) => *int = int.wrapping_add(*i),
                        Some(Value::Float(f)) => {
                            *float += f;
                            *any_float = true;
                        }
                        _ => {}
                    },
                    Acc::Avg { sum, n } => {
                        if let Some(x) = v.and_then(Value::as_f64) {
                            *sum += x;
                            *n += 1;
                        }
                    }
                    Acc::Extreme(current) => {
                        let Some(v) = v.filter(|v| !v.is_null()) else { continue };
                        let better = match current {
                            None => true,
                            Some(c) => {
                                let o = v.total_cmp(c);
                                if a.function == Function::Min {
                                    o == Ordering::Less
                                } else {
                                    o == Ordering::Greater
                                }
                            }
                        };
                        if better {
                            *current = Some(v.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        let groups = std::mem::take(&mut self.groups);
        for (key, accs) in groups {
            let mut r = Record::with_capacity(key.0.len() + accs.len());
            for (name, v) in self.params.group_by.iter().zip(key.0) {
                r.insert(CompactString::from(name.as_str()), v);
            }
            for (acc, a) in accs.into_iter().zip(&self.params.aggregations) {
                let v = match acc {
                    Acc::Count(n) => Value::Int(n),
                    Acc::Sum { int, any_float: false, .. } => Value::Int(int),
                    Acc::Sum { int, float, any_float: true } => Value::Float(int as f64 + float),
                    Acc::Avg { n: 0, .. } => Value::Null,
                    Acc::Avg { sum, n } => Value::Float(sum / n as f64),
                    Acc::Extreme(v) => v.unwrap_or_default(),
                };
                r.insert(CompactString::from(a.output.as_str()), v);
            }
            out.emit(r);
        }
        Ok(())
    }
}
