//! Record schemas as far as they are known before a run: field names and coarse types. They drive
//! the compatibility check between connected ports.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Value;

/// The coarse type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum FieldType {
    Any,
    Null,
    Bool,
    Int,
    Float,
    Decimal,
    String,
    Timestamp,
    LocalDateTime,
    Date,
    Uuid,
    ObjectId,
    Bytes,
    Array,
    Object,
}

impl FieldType {
    pub fn of(v: &Value) -> FieldType {
        match v {
            Value::Null => FieldType::Null,
            Value::Bool(_) => FieldType::Bool,
            Value::Int(_) => FieldType::Int,
            Value::Float(_) => FieldType::Float,
            Value::Decimal(_) => FieldType::Decimal,
            Value::String(_) => FieldType::String,
            Value::Timestamp(_) => FieldType::Timestamp,
            Value::LocalDateTime(_) => FieldType::LocalDateTime,
            Value::Date(_) => FieldType::Date,
            Value::Uuid(_) => FieldType::Uuid,
            Value::ObjectId(_) => FieldType::ObjectId,
            Value::Bytes(_) => FieldType::Bytes,
            Value::Array(_) => FieldType::Array,
            Value::Object(_) => FieldType::Object,
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Int | FieldType::Float | FieldType::Decimal | FieldType::Any)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[ts(export)]
pub struct FieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// The fields a port's records carry, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[ts(export)]
pub struct RecordSchema {
    pub fields: Vec<FieldSchema>,
}

impl RecordSchema {
    pub fn new(fields: impl IntoIterator<Item = (String, FieldType)>) -> Self {
        Self {
            fields: fields.into_iter().map(|(name, field_type)| FieldSchema { name, field_type }).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// Adds or replaces a field, keeping the position of a replaced one.
    pub fn set(&mut self, name: &str, field_type: FieldType) {
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(f) => f.field_type = field_type,
            None => self.fields.push(FieldSchema { name: name.to_owned(), field_type }),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|f| f.name != name);
    }

    pub fn rename(&mut self, from: &str, to: &str) {
        let Some(ty) = self.get(from).map(|f| f.field_type) else {
            return;
        };
        self.remove(to);
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == from) {
            f.name = to.to_owned();
            f.field_type = ty;
        }
    }

    /// The schema of a sample of records: the union of their fields; a field whose types differ
    /// across records is `Any`.
    pub fn infer<'a>(records: impl IntoIterator<Item = &'a crate::Record>) -> Self {
        let mut schema = RecordSchema::default();
        for r in records {
            for (k, v) in r.iter() {
                let t = FieldType::of(v);
                match schema.fields.iter_mut().find(|f| f.name == k.as_str()) {
                    Some(f) if f.field_type != t && t != FieldType::Null => {
                        if f.field_type == FieldType::Null {
                            f.field_type = t;
                        } else {
                            f.field_type = FieldType::Any;
                        }
                    }
                    Some(_) => {}
                    None => schema.fields.push(FieldSchema { name: k.to_string(), field_type: t }),
                }
            }
        }
        schema
    }
}
