//! Typed params plumbing for the MongoDB nodes: the JSON Schema of a params struct (with
//! defaults, from schemars), decoding with errors that name the field, and query documents
//! written as (extended) JSON turned into BSON.

use flow_runtime::NodeError;
use mongodb::bson::{Bson, Document};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// A JSON object param (a filter, a projection, a stage).
pub(crate) type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The JSON Schema of `P`, inlined so it is self-contained.
pub(crate) fn schema_of<P: JsonSchema>() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let schema = settings.into_generator().into_root_schema_for::<P>();
    serde_json::to_value(schema).unwrap_or_default()
}

/// Decodes params; the error names the offending field.
pub(crate) fn decode<P: DeserializeOwned>(params: &serde_json::Value) -> Result<P, NodeError> {
    serde_path_to_error::deserialize(params)
        .map_err(|e| NodeError::params(format!("params.{}: {}", e.path(), e.inner())))
}

/// A JSON object as a BSON document; extended JSON (`{"$oid": ...}`, `{"$date": ...}`,
/// `{"$numberDecimal": ...}`) becomes the BSON type it names. `param` names it in errors.
pub(crate) fn document(param: &str, json: &JsonObject) -> Result<Document, NodeError> {
    match Bson::try_from(serde_json::Value::Object(json.clone())) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(other) => Err(NodeError::params(format!(
            "params.{param}: expected a document, the extended JSON reads as a {:?}",
            other.element_type()
        ))),
        Err(e) => Err(NodeError::params(format!("params.{param}: invalid extended JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId};

    #[test]
    fn extended_json_becomes_bson_types() {
        let json = serde_json::json!({
            "_id": {"$oid": "65f0a1b2c3d4e5f601234567"},
            "age": {"$gt": 25},
            "n": {"$in": [1, 2.5]}
        });
        let serde_json::Value::Object(map) = json else { unreachable!("an object literal") };
        let d = document("filter", &map).expect("valid");
        let oid = ObjectId::parse_str("65f0a1b2c3d4e5f601234567").expect("oid");
        assert_eq!(d, doc! {"_id": oid, "age": {"$gt": 25_i32}, "n": {"$in": [1_i32, 2.5]}});
    }

    #[test]
    fn a_bad_extended_json_value_names_the_param() {
        let serde_json::Value::Object(map) = serde_json::json!({"_id": {"$oid": "nope"}}) else {
            unreachable!("an object literal")
        };
        let e = document("filter", &map).expect_err("invalid oid");
        assert!(e.message.starts_with("params.filter: invalid extended JSON"), "{}", e.message);
    }
}
