//! Record values as they travel between nodes. Field names and short strings are stored inline
//! (no heap allocation up to 24 bytes), which keeps generating and reshaping records cheap.
//! Database types without a JSON equivalent (numeric, timestamps, dates, uuid, ObjectId, bytes)
//! keep their own variants, so a value read from one database is written to another unchanged;
//! as JSON they become strings (see docs/types.md).

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use compact_str::CompactString;
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A group of records moved between nodes in one channel message.
pub type Batch = Vec<Record>;

/// One value of a record field.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Exact decimal (PostgreSQL numeric, BSON Decimal128).
    Decimal(Decimal),
    String(CompactString),
    /// A point in time (timestamptz, BSON date).
    Timestamp(DateTime<Utc>),
    /// A wall-clock date and time without zone (timestamp without time zone).
    LocalDateTime(NaiveDateTime),
    Date(NaiveDate),
    Uuid(uuid::Uuid),
    /// A MongoDB ObjectId.
    ObjectId([u8; 12]),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Object(Record),
}

impl Value {
    /// The value as a float when it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Decimal(d) => d.to_f64(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of the value's type as shown in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::String(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::LocalDateTime(_) => "local_datetime",
            Value::Date(_) => "date",
            Value::Uuid(_) => "uuid",
            Value::ObjectId(_) => "object_id",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The text form used in JSON and templates for types JSON lacks.
    fn as_text(&self) -> Option<String> {
        Some(match self {
            Value::Decimal(d) => d.to_string(),
            Value::Timestamp(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Value::LocalDateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::Uuid(u) => u.to_string(),
            Value::ObjectId(b) => hex(b),
            Value::Bytes(b) => format!("\\x{}", hex(b)),
            _ => return None,
        })
    }

    /// A total order across all values (null < bool < numbers < strings < arrays < objects);
    /// integers and floats compare by numeric value. Used by sort and group-by.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Int(_) | Value::Float(_) | Value::Decimal(_) => 2,
                Value::String(_) => 3,
                Value::Date(_) => 4,
                Value::LocalDateTime(_) => 5,
                Value::Timestamp(_) => 6,
                Value::Uuid(_) => 7,
                Value::ObjectId(_) => 8,
                Value::Bytes(_) => 9,
                Value::Array(_) => 10,
                Value::Object(_) => 11,
            }
        }
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
            (Value::Decimal(a), Value::Int(b)) => a.cmp(&Decimal::from(*b)),
            (Value::Int(a), Value::Decimal(b)) => Decimal::from(*a).cmp(b),
            (
                Value::Int(_) | Value::Float(_) | Value::Decimal(_),
                Value::Int(_) | Value::Float(_) | Value::Decimal(_),
            ) => {
                let (a, b) = (self.as_f64().unwrap_or(0.0), other.as_f64().unwrap_or(0.0));
                a.total_cmp(&b)
            }
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::LocalDateTime(a), Value::LocalDateTime(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
            (Value::ObjectId(a), Value::ObjectId(b)) => a.cmp(b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let o = x.total_cmp(y);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value::Object(a), Value::Object(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
                    let o = ka.cmp(kb).then_with(|| va.total_cmp(vb));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// Equality as filters see it: `1 == 1.0`.
    pub fn loose_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (
                Value::Int(_) | Value::Float(_) | Value::Decimal(_),
                Value::Int(_) | Value::Float(_) | Value::Decimal(_),
            ) => self.total_cmp(other) == Ordering::Equal,
            _ => self == other,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => f.write_str(s),
            Value::Array(_) | Value::Object(_) => match serde_json::to_string(self) {
                Ok(s) => f.write_str(&s),
                Err(_) => f.write_str("<unprintable>"),
            },
            other => f.write_str(&other.as_text().unwrap_or_default()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.as_str().into()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter().map(|(k, v)| (CompactString::from(k.as_str()), Value::from(v))).collect(),
            ),
        }
    }
}

impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Into::into).collect()),
            Value::Object(r) => {
                serde_json::Value::Object(r.iter().map(|(k, v)| (k.to_string(), v.into())).collect())
            }
            other => serde_json::Value::String(other.as_text().unwrap_or_default()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<Decimal> for Value {
    fn from(d: Decimal) -> Self {
        Value::Decimal(d)
    }
}

impl Value {
    /// A float as an exact decimal, when it is finite.
    pub fn decimal_from_f64(f: f64) -> Option<Decimal> {
        Decimal::from_f64(f)
    }
}

/// A record: ordered fields. Lookups scan linearly, which beats hashing for the handful of
/// fields typical records carry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    fields: Vec<(CompactString, Value)>,
}

impl Record {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self { fields: Vec::with_capacity(n) }
    }

    /// A record of fields whose names the caller knows to be distinct (no check, as
    /// [`Record::push_unchecked`]); the fastest way to build one from a list of generators.
    pub fn from_distinct(fields: Vec<(CompactString, Value)>) -> Self {
        Self { fields }
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.fields.iter_mut().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// Sets a field, replacing its value in place when it exists.
    pub fn insert(&mut self, name: impl Into<CompactString>, value: Value) {
        let name = name.into();
        match self.get_mut(&name) {
            Some(slot) => *slot = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Appends a field without checking for an existing one of the same name; for building
    /// records whose field names are known to be distinct.
    pub fn push_unchecked(&mut self, name: CompactString, value: Value) {
        self.fields.push((name, value));
    }

    /// Keeps only the fields named in `names`, in that order, in place (no new record); a name
    /// the record lacks, or one named again, is skipped.
    pub fn keep_only(&mut self, names: &[CompactString]) {
        let mut kept = 0;
        for name in names {
            if let Some(j) = self.fields[kept..].iter().position(|(k, _)| k == name) {
                self.fields.swap(kept, kept + j);
                kept += 1;
            }
        }
        self.fields.truncate(kept);
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.fields.iter().position(|(k, _)| k == name)?;
        Some(self.fields.remove(i).1)
    }

    /// Renames a field in place, keeping its position. Returns false when it is absent.
    /// A field already named `to` is replaced.
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        let Some(i) = self.fields.iter().position(|(k, _)| k == from) else {
            return false;
        };
        if let Some(j) = self.fields.iter().position(|(k, _)| k == to)
            && j != i
        {
            self.fields.remove(j);
            let i = if j < i { i - 1 } else { i };
            self.fields[i].0 = to.into();
        } else {
            self.fields[i].0 = to.into();
        }
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = (&CompactString, &Value)> {
        self.fields.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(k, _)| k.as_str())
    }

    /// Builds a record from a JSON object; other JSON values give `None`.
    pub fn from_json(v: &serde_json::Value) -> Option<Record> {
        match Value::from(v) {
            Value::Object(r) => Some(r),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::from(&Value::Object(self.clone()))
    }
}

impl FromIterator<(CompactString, Value)> for Record {
    fn from_iter<T: IntoIterator<Item = (CompactString, Value)>>(iter: T) -> Self {
        let mut r = Record::new();
        for (k, v) in iter {
            r.insert(k, v);
        }
        r
    }
}

impl<const N: usize> From<[(&str, Value); N]> for Record {
    fn from(fields: [(&str, Value); N]) -> Self {
        fields.into_iter().map(|(k, v)| (CompactString::from(k), v)).collect()
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            m.serialize_entry(k.as_str(), v)?;
        }
        m.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) => s.serialize_unit(),
            Value::String(v) => s.serialize_str(v),
            Value::Decimal(_)
            | Value::Timestamp(_)
            | Value::LocalDateTime(_)
            | Value::Date(_)
            | Value::Uuid(_)
            | Value::ObjectId(_)
            | Value::Bytes(_) => s.serialize_str(&self.as_text().unwrap_or_default()),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Object(r) => r.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(r) => Ok(r),
            other => Err(de::Error::custom(format!(
                "expected a record (JSON object), found {}",
                other.type_name()
            ))),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map(Value::Int).unwrap_or(Value::Float(u as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut r = Record::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<CompactString, Value>()? {
            r.insert(k, v);
        }
        Ok(Value::Object(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_only_orders_as_named_and_skips_missing_and_repeated_names() {
        let mut r = Record::from([("a", 1.into()), ("b", 2.into()), ("c", 3.into()), ("d", 4.into())]);
        r.keep_only(&["c".into(), "zzz".into(), "a".into(), "c".into()]);
        assert_eq!(r.keys().collect::<Vec<_>>(), ["c", "a"]);
        assert_eq!((r.get("c"), r.get("a")), (Some(&Value::Int(3)), Some(&Value::Int(1))));
    }

    #[test]
    fn rename_keeps_position_and_replaces_existing_target() {
        let mut r = Record::from([("a", 1.into()), ("b", 2.into()), ("c", 3.into())]);
        assert!(r.rename("a", "c"));
        assert_eq!(r.keys().collect::<Vec<_>>(), ["c", "b"]);
        assert_eq!(r.get("c"), Some(&Value::Int(1)));
        assert!(!r.rename("zzz", "y"));
    }

    #[test]
    fn json_round_trip_keeps_field_order_and_types() {
        let text = r#"{"z":1,"a":"x","f":1.5,"n":null,"l":[true,{"k":2}]}"#;
        let r: Record = serde_json::from_str(text).expect("valid record");
        assert_eq!(serde_json::to_string(&r).expect("serializes"), text);
    }

    #[test]
    fn numbers_compare_across_int_and_float() {
        assert!(Value::Int(2).loose_eq(&Value::Float(2.0)));
        assert_eq!(Value::Int(1).total_cmp(&Value::Float(1.5)), Ordering::Less);
        assert_eq!(Value::Null.total_cmp(&Value::Int(0)), Ordering::Less);
        let d: Decimal = "1.50".parse().expect("decimal");
        assert!(Value::Decimal(d).loose_eq(&Value::Float(1.5)));
        assert_eq!(Value::Decimal(d).total_cmp(&Value::Int(2)), Ordering::Less);
    }

    #[test]
    fn database_types_become_strings_in_json() {
        let ts = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.5Z").expect("ts").to_utc();
        let r = Record::from([
            ("ts", Value::Timestamp(ts)),
            ("d", Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).expect("date"))),
            ("n", Value::Decimal("12.30".parse().expect("decimal"))),
            ("o", Value::ObjectId([0xab; 12])),
            ("b", Value::Bytes(vec![0, 255])),
        ]);
        assert_eq!(
            r.to_json(),
            serde_json::json!({"ts": "2024-05-01T10:00:00.500Z", "d": "2024-02-29", "n": "12.30",
                "o": "abababababababababababab", "b": "\\x00ff"})
        );
    }
}
