//! The node types of the engine, one module each, and [`catalog`], the one function that lists
//! them all. Every node type describes itself (ports, params schema, output schema) and builds an
//! operator from typed params.

use std::sync::Arc;

use flow_runtime::NodeType;

pub use condition::Condition;

mod aggregate;
mod code;
mod collect;
mod condition;
mod delay;
mod fail;
mod field_mapper;
mod filter;
mod generate_rows;
mod limit;
mod merge;
mod params;
mod script;
mod simple_expr;
mod sort;
mod static_data;
mod subflow;

/// Every node type this build can run.
pub fn catalog() -> Vec<Arc<dyn NodeType>> {
    let mut types: Vec<Arc<dyn NodeType>> = vec![
        Arc::new(generate_rows::GenerateRows),
        Arc::new(static_data::StaticData),
        Arc::new(filter::Filter),
        Arc::new(field_mapper::FieldMapper),
        Arc::new(code::Code),
        Arc::new(aggregate::Aggregate),
        Arc::new(sort::Sort),
        Arc::new(limit::Limit),
        Arc::new(merge::Merge),
        Arc::new(collect::Collect),
        Arc::new(delay::Delay),
        Arc::new(fail::Fail),
        Arc::new(subflow::Subflow),
        Arc::new(subflow::FlowInput),
        Arc::new(subflow::FlowOutput),
    ];
    types.extend(flow_postgres::node_types());
    types.extend(flow_mongodb::node_types());
    types
}
