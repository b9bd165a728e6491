//! Custom Code: runs a user's Rhai script once per record in a sandbox (no I/O, no imports, no
//! `eval`, bounded operations and data sizes). The script sees the record as the map `record`
//! and its value decides the output: one record, several, or none.

use async_trait::async_trait;
use flow_model::{Batch, Category, NodeDescriptor, NodeSpec, PortSpec, Record};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use rhai::{AST, Dynamic, Map, Scope};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::params::{decode, schema_of};
use crate::script::{Sandbox, map_to_record, record_to_map};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Rhai script run once per record. The record is the map `record`; the script's value is the
    /// output: a map (one record), an array of maps (several records) or `()` (no record).
    #[schemars(length(min = 1))]
    script: String,
    /// Most operations the script may take for one record; a script that goes beyond fails
    /// that record.
    #[serde(default = "default_max_operations")]
    #[schemars(range(min = 1))]
    max_operations: u64,
}

fn default_max_operations() -> u64 {
    100_000
}

pub(crate) struct Code;

impl NodeSpec for Code {
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "code".into(),
            title: "Custom Code".into(),
            category: Category::Transform,
            description: "Runs a Rhai script once per record. The record is the variable `record`, an object map \
                          (`record.price`, `record[\"unit price\"]`). The value of the script's last statement is the \
                          output: a map is emitted as one record, an array of maps as several records, and `()` drops \
                          the record; anything else is an error for that record (routed to `error` or failing the \
                          node). End with `record` to pass the changed record on, e.g. \
                          `record.total = record.price * record.qty; record` (a script ending in an assignment gives \
                          `()` and drops the record). Fields keep their input order; new fields follow in name \
                          order. Sandboxed: no file or network access, no imports, no eval; each record's run is \
                          limited to max_operations operations (default 100,000), 32 nested calls, strings of 16 MiB, \
                          1,000,000 array elements and 100,000 map properties."
                .into(),
            inputs: vec![PortSpec::input("in", "Records")],
            outputs: vec![PortSpec::output("out", "The script's records"), PortSpec::error_output()],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }
}

impl NodeType for Code {
    fn build(&self, params: serde_json::Value, _ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        Ok(Box::new(CodeOp { script: Script::new(&p)?, seen: 0 }))
    }
}

/// The compiled script with its sandbox and a scope reused across records.
struct Script {
    sandbox: Sandbox,
    ast: AST,
    scope: Scope<'static>,
}

impl Script {
    fn new(p: &Params) -> Result<Self, NodeError> {
        if p.script.trim().is_empty() {
            return Err(NodeError::params("params.script: a script is required"));
        }
        let sandbox = Sandbox::new(p.max_operations);
        let ast = sandbox.compile_script("script", &p.script)?;
        Ok(Self { sandbox, ast, scope: Scope::new() })
    }

    /// Runs the script on record number `index` (of this node's input) and appends its output
    /// records to `out`; on error nothing is appended.
    fn run(&mut self, index: u64, record: &Record, out: &mut Vec<Record>) -> Result<(), NodeError> {
        self.scope.clear();
        self.scope.push_dynamic("record", Dynamic::from_map(record_to_map(record)));
        let start = out.len();
        let result = self.sandbox.eval(&mut self.scope, &self.ast).and_then(|v| collect(v, record, out));
        result.map_err(|m| {
            out.truncate(start);
            NodeError::record(format!("record {index}: {m}"))
        })
    }
}

/// Appends the records a script's value stands for.
fn collect(value: Dynamic, input: &Record, out: &mut Vec<Record>) -> Result<(), String> {
    // Values captured by closures are shared; read through to the value itself.
    let value = value.flatten();
    if value.is_unit() {
        return Ok(());
    }
    if value.is_array() {
        let items = value.into_array().map_err(|t| format!("unexpected {t}"))?;
        for (i, item) in items.into_iter().enumerate() {
            let type_name = item.type_name();
            let map = item.flatten().try_cast::<Map>().ok_or_else(|| {
                format!("element {i} of the script's array is {type_name}; every element must be a map")
            })?;
            out.push(map_to_record(map, input.keys())?);
        }
        return Ok(());
    }
    let type_name = value.type_name();
    let map = value.try_cast::<Map>().ok_or_else(|| {
        format!(
            "the script gave {type_name}; it must give a map (one record), an array of maps (several records) \
             or () (no record)"
        )
    })?;
    out.push(map_to_record(map, input.keys())?);
    Ok(())
}

struct CodeOp {
    script: Script,
    /// Records received so far, to number records in error messages.
    seen: u64,
}

#[async_trait]
impl Operator for CodeOp {
    async fn process(&mut self, _port: usize, batch: &mut Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let input = std::mem::take(batch);
        let first = self.seen;
        self.seen += input.len() as u64;
        let mut produced = Vec::with_capacity(input.len());
        for (i, r) in (first..).zip(input) {
            if let Err(e) = self.script.run(i, &r, &mut produced) {
                out.reject(r, e)?;
            }
        }
        out.emit_batch(produced);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flow_model::{Catalog, Value};
    use serde_json::json;

    use super::*;

    fn script(source: &str) -> Script {
        Script::new(&decode::<Params>(&json!({"script": source})).expect("decodes")).expect("compiles")
    }

    fn item() -> Record {
        Record::from([("sku", "a1".into()), ("qty", 3.into()), ("price", Value::Float(2.5))])
    }

    fn run(s: &mut Script, r: &Record) -> Result<Vec<Record>, NodeError> {
        let mut out = Vec::new();
        s.run(0, r, &mut out).map(|()| out)
    }

    #[test]
    fn a_map_is_one_record_keeping_field_order() {
        let mut s = script("record.total = record.qty * record.price; record.a = true; record");
        let expected = Record::from([
            ("sku", "a1".into()),
            ("qty", 3.into()),
            ("price", Value::Float(2.5)),
            ("a", true.into()),
            ("total", Value::Float(7.5)),
        ]);
        assert_eq!(run(&mut s, &item()).expect("runs"), [expected]);
        let mut s = script("#{ id: record.sku, nested: #{ list: [1, ()] } }");
        let nested = Record::from([("list", Value::Array(vec![1.into(), Value::Null]))]);
        let expected = Record::from([("id", "a1".into()), ("nested", Value::Object(nested))]);
        assert_eq!(run(&mut s, &item()).expect("runs"), [expected]);
    }

    #[test]
    fn an_array_is_several_records_and_unit_drops() {
        let mut s =
            script("let out = []; for i in 0..record.qty { out.push(#{ sku: record.sku, n: i }); } out");
        let out = run(&mut s, &item()).expect("runs");
        let ns: Vec<_> = out.iter().map(|r| r.get("n").cloned()).collect();
        assert_eq!(ns, [Some(0.into()), Some(1.into()), Some(2.into())]);
        assert_eq!(out[0].keys().collect::<Vec<_>>(), ["sku", "n"]);

        let mut s = script("if record.qty > 5 { record }");
        assert_eq!(run(&mut s, &item()).expect("runs"), Vec::<Record>::new());
        let mut s = script("record.qty = 1");
        assert_eq!(run(&mut s, &item()).expect("runs"), Vec::<Record>::new());
    }

    #[test]
    fn other_results_are_record_errors_and_append_nothing() {
        let mut s = script("record.qty");
        let err = run(&mut s, &item()).expect_err("an int is no record");
        assert_eq!(err.kind, flow_runtime::ErrorKind::Record);
        assert!(err.message.starts_with("record 0: the script gave i64;"), "{}", err.message);

        let mut s = script("[record, 1]");
        let mut out = vec![Record::new()];
        let err = s.run(9, &item(), &mut out).expect_err("1 is no map");
        assert_eq!(
            err.message,
            "record 9: element 1 of the script's array is i64; every element must be a map"
        );
        assert_eq!(out, [Record::new()], "the first element was taken back");

        let mut s = script("record.qty.foo()");
        assert!(run(&mut s, &item()).is_err());
    }

    #[test]
    fn max_operations_bounds_each_record() {
        let p = decode::<Params>(&json!({"script": "loop { record.qty += 1; }", "max_operations": 500}))
            .expect("decodes");
        let mut s = Script::new(&p).expect("compiles");
        let err = run(&mut s, &item()).expect_err("stopped");
        assert!(
            err.message.starts_with("record 0: script stopped after max_operations (500)"),
            "{}",
            err.message
        );
        // The bound is per record: the next run starts from zero.
        let p = decode::<Params>(
            &json!({"script": "for i in 0..100 { record.qty += 1; } record", "max_operations": 500}),
        )
        .expect("decodes");
        let mut s = Script::new(&p).expect("compiles");
        for _ in 0..5 {
            assert_eq!(run(&mut s, &item()).expect("runs")[0].get("qty"), Some(&103.into()));
        }
    }

    #[test]
    fn build_refuses_empty_and_invalid_scripts() {
        let err = |source: &str| {
            Script::new(&Params { script: source.into(), max_operations: 10 })
                .err()
                .map(|e| e.message)
                .unwrap_or_default()
        };
        assert_eq!(err("  "), "params.script: a script is required");
        assert!(err("let = ;").starts_with("params.script: "));
        assert!(err("eval(\"record\")").starts_with("params.script: "));
        let catalog = Catalog::new([Arc::new(Code) as Arc<dyn NodeSpec>]).expect("valid schema");
        assert_eq!(catalog.check_params("code", &json!({"script": "record"})), Vec::new());
        assert!(!catalog.check_params("code", &json!({"script": "record", "language": "js"})).is_empty());
    }
}
