//! The mapping between BSON and record values, both directions (the table in docs/types.md,
//! section "MongoDB (BSON)"). Reading never fails: BSON types without a record equivalent keep
//! their relaxed extended-JSON form. Writing fails only for a decimal the BSON library refuses.

use chrono::{DateTime, NaiveTime, Utc};
use compact_str::CompactString;
use flow_model::{Record, Value};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Decimal128, Document, oid::ObjectId};
use rust_decimal::Decimal;

/// A value that has no BSON form.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToBsonError {
    #[error("field `{field}`: decimal {value} cannot be written as BSON Decimal128: {reason}")]
    Decimal { field: String, value: Decimal, reason: String },
}

/// A BSON value as a record value.
pub(crate) fn to_value(b: Bson) -> Value {
    match b {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(x) => Value::Bool(x),
        Bson::Int32(i) => Value::Int(i64::from(i)),
        Bson::Int64(i) => Value::Int(i),
        Bson::Double(f) => Value::Float(f),
        Bson::Decimal128(d) => decimal_value(&d),
        Bson::String(s) | Bson::Symbol(s) => Value::String(s.into()),
        Bson::JavaScriptCode(code) => Value::String(code.into()),
        Bson::DateTime(dt) => match DateTime::<Utc>::from_timestamp_millis(dt.timestamp_millis()) {
            Some(t) => Value::Timestamp(t),
            // Beyond chrono's range (about ±262,000 years): keep the text rather than guess.
            None => Value::String(dt.to_string().into()),
        },
        Bson::ObjectId(oid) => Value::ObjectId(oid.bytes()),
        Bson::Binary(bin) => match (bin.subtype, uuid::Uuid::from_slice(&bin.bytes)) {
            (BinarySubtype::Uuid, Ok(u)) => Value::Uuid(u),
            _ => Value::Bytes(bin.bytes),
        },
        Bson::Array(items) => Value::Array(items.into_iter().map(to_value).collect()),
        Bson::Document(doc) => Value::Object(to_record(doc)),
        // Regex, code with scope, internal timestamps, DBPointer, MinKey/MaxKey: their relaxed
        // extended JSON, so nothing is lost from view.
        other => Value::from(&other.into_relaxed_extjson()),
    }
}

/// Decimal128 as an exact decimal when rust_decimal can hold it (28 significant digits);
/// NaN and infinities as floats; anything else as its exact text.
fn decimal_value(d: &Decimal128) -> Value {
    let text = d.to_string();
    let exact = text.parse::<Decimal>().or_else(|_| Decimal::from_scientific(&text.to_ascii_lowercase()));
    match exact {
        Ok(x) => Value::Decimal(x),
        Err(_) => match text.as_str() {
            "NaN" | "-NaN" => Value::Float(f64::NAN),
            "Infinity" => Value::Float(f64::INFINITY),
            "-Infinity" => Value::Float(f64::NEG_INFINITY),
            _ => Value::String(text.into()),
        },
    }
}

/// A BSON document as a record, field order kept.
pub(crate) fn to_record(doc: Document) -> Record {
    let mut r = Record::with_capacity(doc.len());
    for (k, v) in doc {
        // A document's keys are distinct.
        r.push_unchecked(CompactString::from(k), to_value(v));
    }
    r
}

/// A record value as BSON; `field` names it in errors.
pub(crate) fn to_bson(field: &str, v: &Value) -> Result<Bson, ToBsonError> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        // The smallest integer type that holds the value, as the MongoDB shells and pymongo do.
        Value::Int(i) => match i32::try_from(*i) {
            Ok(small) => Bson::Int32(small),
            Err(_) => Bson::Int64(*i),
        },
        Value::Float(f) => Bson::Double(*f),
        Value::Decimal(d) => {
            let parsed = d.to_string().parse::<Decimal128>().map_err(|e| ToBsonError::Decimal {
                field: field.to_owned(),
                value: *d,
                reason: e.to_string(),
            })?;
            Bson::Decimal128(parsed)
        }
        Value::String(s) => Bson::String(s.to_string()),
        Value::Timestamp(t) => Bson::DateTime(mongodb::bson::DateTime::from_millis(t.timestamp_millis())),
        // BSON has one date type: a zone-less date-time is taken as UTC, a date as midnight UTC.
        Value::LocalDateTime(t) => {
            Bson::DateTime(mongodb::bson::DateTime::from_millis(t.and_utc().timestamp_millis()))
        }
        Value::Date(d) => Bson::DateTime(mongodb::bson::DateTime::from_millis(
            d.and_time(NaiveTime::MIN).and_utc().timestamp_millis(),
        )),
        Value::Uuid(u) => Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: u.as_bytes().to_vec() }),
        Value::ObjectId(b) => Bson::ObjectId(ObjectId::from_bytes(*b)),
        Value::Bytes(b) => Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: b.clone() }),
        Value::Array(items) => {
            Bson::Array(items.iter().map(|x| to_bson(field, x)).collect::<Result<_, _>>()?)
        }
        Value::Object(r) => Bson::Document(to_document(r)?),
    })
}

/// A record as a BSON document, field order kept.
pub(crate) fn to_document(r: &Record) -> Result<Document, ToBsonError> {
    let mut doc = Document::new();
    for (k, v) in r.iter() {
        doc.insert(k.as_str(), to_bson(k, v)?);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use mongodb::bson::doc;

    fn dec(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn bson_types_read_as_record_values() {
        let oid = ObjectId::parse_str("65f0a1b2c3d4e5f601234567").expect("oid");
        let uuid = uuid::Uuid::parse_str("0191e0b6-5b5c-7c1e-9a38-2f1f5d1b9e01").expect("uuid");
        let doc = doc! {
            "_id": oid,
            "i32": 7_i32,
            "i64": 5_000_000_000_i64,
            "f": 1.5_f64,
            "d": "12.30".parse::<Decimal128>().expect("d128"),
            "s": "text",
            "b": true,
            "t": mongodb::bson::DateTime::from_millis(1_714_557_600_500),
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 255] },
            "u": Binary { subtype: BinarySubtype::Uuid, bytes: uuid.as_bytes().to_vec() },
            "n": Bson::Null,
            "a": [1_i32, "x"],
            "o": { "z": 1_i32, "a": 2_i32 },
        };
        let r = to_record(doc);
        let ts = Utc.timestamp_millis_opt(1_714_557_600_500).single().expect("ts");
        let expected = Record::from([
            ("_id", Value::ObjectId(oid.bytes())),
            ("i32", Value::Int(7)),
            ("i64", Value::Int(5_000_000_000)),
            ("f", Value::Float(1.5)),
            ("d", Value::Decimal(dec("12.30"))),
            ("s", Value::from("text")),
            ("b", Value::Bool(true)),
            ("t", Value::Timestamp(ts)),
            ("bin", Value::Bytes(vec![0, 255])),
            ("u", Value::Uuid(uuid)),
            ("n", Value::Null),
            ("a", Value::Array(vec![Value::Int(1), Value::from("x")])),
            ("o", Value::Object(Record::from([("z", Value::Int(1)), ("a", Value::Int(2))]))),
        ]);
        assert_eq!(r, expected);
        assert_eq!(r.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "field order kept");
    }

    #[test]
    fn record_values_write_as_bson_types() {
        let ts = Utc.timestamp_millis_opt(1_714_557_600_500).single().expect("ts");
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
        let local = date.and_hms_opt(10, 30, 0).expect("time");
        let uuid = uuid::Uuid::parse_str("0191e0b6-5b5c-7c1e-9a38-2f1f5d1b9e01").expect("uuid");
        let r = Record::from([
            ("small", Value::Int(7)),
            ("big", Value::Int(5_000_000_000)),
            ("f", Value::Float(2.5)),
            ("d", Value::Decimal(dec("-0.001"))),
            ("t", Value::Timestamp(ts)),
            ("date", Value::Date(date)),
            ("local", Value::LocalDateTime(local)),
            ("u", Value::Uuid(uuid)),
            ("o", Value::ObjectId([1; 12])),
            ("bytes", Value::Bytes(vec![9])),
            (
                "nested",
                Value::Object(Record::from([("k", Value::Array(vec![Value::Null, Value::Bool(false)]))])),
            ),
        ]);
        let doc = to_document(&r).expect("converts");
        let midnight = Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).single().expect("midnight");
        let local_utc = Utc.with_ymd_and_hms(2024, 2, 29, 10, 30, 0).single().expect("local");
        assert_eq!(
            doc,
            doc! {
                "small": 7_i32,
                "big": 5_000_000_000_i64,
                "f": 2.5_f64,
                "d": "-0.001".parse::<Decimal128>().expect("d128"),
                "t": mongodb::bson::DateTime::from_millis(ts.timestamp_millis()),
                "date": mongodb::bson::DateTime::from_millis(midnight.timestamp_millis()),
                "local": mongodb::bson::DateTime::from_millis(local_utc.timestamp_millis()),
                "u": Binary { subtype: BinarySubtype::Uuid, bytes: uuid.as_bytes().to_vec() },
                "o": ObjectId::from_bytes([1; 12]),
                "bytes": Binary { subtype: BinarySubtype::Generic, bytes: vec![9] },
                "nested": { "k": [Bson::Null, false] },
            }
        );
        assert_eq!(doc.keys().collect::<Vec<_>>(), r.keys().collect::<Vec<_>>());
    }

    #[test]
    fn round_trip_keeps_every_value_bson_can_hold() {
        let r = Record::from([
            ("_id", Value::ObjectId([7; 12])),
            ("n", Value::Int(-3)),
            ("big", Value::Int(i64::MAX)),
            ("f", Value::Float(-0.25)),
            ("d", Value::Decimal(dec("123456789012345678.0123456789"))),
            ("s", Value::from("é ✓")),
            ("t", Value::Timestamp(Utc.timestamp_millis_opt(0).single().expect("epoch"))),
            ("u", Value::Uuid(uuid::Uuid::from_u128(42))),
            ("b", Value::Bytes(vec![])),
            ("a", Value::Array(vec![Value::Object(Record::from([("x", Value::Null)]))])),
        ]);
        assert_eq!(to_record(to_document(&r).expect("converts")), r);
    }

    #[test]
    fn decimals_beyond_rust_decimal_and_exotic_types_stay_visible() {
        let huge: Decimal128 = "1.000000000000000000000000000000001E+6000".parse().expect("d128");
        assert_eq!(
            to_value(Bson::Decimal128(huge)),
            Value::from("1.000000000000000000000000000000001E+6000")
        );
        let nan: Decimal128 = "NaN".parse().expect("nan");
        assert!(matches!(to_value(Bson::Decimal128(nan)), Value::Float(f) if f.is_nan()));
        let sci: Decimal128 = "1.5E+3".parse().expect("sci");
        assert_eq!(to_value(Bson::Decimal128(sci)), Value::Decimal(dec("1500")));
        let regex =
            Bson::RegularExpression(mongodb::bson::Regex { pattern: "^a".into(), options: "i".into() });
        assert_eq!(to_value(regex).to_string(), r#"{"$regularExpression":{"pattern":"^a","options":"i"}}"#);
        assert_eq!(to_value(Bson::Undefined), Value::Null);
        assert_eq!(to_value(Bson::Symbol("s".into())), Value::from("s"));
        let legacy_uuid = Binary { subtype: BinarySubtype::UuidOld, bytes: vec![1; 16] };
        assert_eq!(to_value(Bson::Binary(legacy_uuid)), Value::Bytes(vec![1; 16]));
    }
}
