//! The mapping between PostgreSQL types and record values, both ways (docs/types.md is its table):
//! reading a column of a result row into a `Value`; converting a `Value` for a column or
//! placeholder of a known type (parsing strings into uuid, timestamps, numbers...); binding the
//! converted value in PostgreSQL's binary format; and writing it in COPY's text format.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use compact_str::CompactString;
use flow_model::{FieldType, Value};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgTypeKind, PgValueRef, Postgres};
use sqlx::{Decode, Encode, Type, TypeInfo, ValueRef};

/// Built-in types that have a record value of their own; arrays of them are arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Timestamptz,
    Timestamp,
    Date,
    Uuid,
    Json,
    Jsonb,
    Bytea,
}

/// Built-in types as (type OID, array type OID, scalar); built-in OIDs are fixed in PostgreSQL.
const BUILTIN: [(u32, u32, Scalar); 18] = [
    (16, 1000, Scalar::Bool),
    (21, 1005, Scalar::Int2),
    (23, 1007, Scalar::Int4),
    (20, 1016, Scalar::Int8),
    (700, 1021, Scalar::Float4),
    (701, 1022, Scalar::Float8),
    (1700, 1231, Scalar::Numeric),
    (25, 1009, Scalar::Text),
    (1043, 1015, Scalar::Text), // varchar
    (1042, 1014, Scalar::Text), // char(n)
    (19, 1003, Scalar::Text),   // name
    (1184, 1185, Scalar::Timestamptz),
    (1114, 1115, Scalar::Timestamp),
    (1082, 1182, Scalar::Date),
    (2950, 2951, Scalar::Uuid),
    (114, 199, Scalar::Json),
    (3802, 3807, Scalar::Jsonb),
    (17, 1001, Scalar::Bytea),
];

const TEXT_OID: u32 = 25;
const VOID_OID: u32 = 2278;

impl Scalar {
    fn sql_name(self) -> &'static str {
        match self {
            Scalar::Bool => "boolean",
            Scalar::Int2 => "smallint",
            Scalar::Int4 => "integer",
            Scalar::Int8 => "bigint",
            Scalar::Float4 => "real",
            Scalar::Float8 => "double precision",
            Scalar::Numeric => "numeric",
            Scalar::Text => "text",
            Scalar::Timestamptz => "timestamptz",
            Scalar::Timestamp => "timestamp",
            Scalar::Date => "date",
            Scalar::Uuid => "uuid",
            Scalar::Json => "json",
            Scalar::Jsonb => "jsonb",
            Scalar::Bytea => "bytea",
        }
    }

    fn field_type(self) -> FieldType {
        match self {
            Scalar::Bool => FieldType::Bool,
            Scalar::Int2 | Scalar::Int4 | Scalar::Int8 => FieldType::Int,
            Scalar::Float4 | Scalar::Float8 => FieldType::Float,
            Scalar::Numeric => FieldType::Decimal,
            Scalar::Text => FieldType::String,
            Scalar::Timestamptz => FieldType::Timestamp,
            Scalar::Timestamp => FieldType::LocalDateTime,
            Scalar::Date => FieldType::Date,
            Scalar::Uuid => FieldType::Uuid,
            // A JSON document may be any value.
            Scalar::Json | Scalar::Jsonb => FieldType::Any,
            Scalar::Bytea => FieldType::Bytes,
        }
    }
}

/// How the values of one column or placeholder are exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PgType {
    /// A built-in type with a record value; `oid` is the exact type (varchar, not text).
    Scalar { scalar: Scalar, oid: u32 },
    /// A one-dimensional array of a built-in type.
    Array { scalar: Scalar, oid: u32, elem_oid: u32 },
    /// A user-defined enum: its binary form is its label, so it travels as text.
    Enum { oid: u32, name: String },
    /// What functions such as `pg_sleep` return: always null.
    Void,
    /// Anything else (inet, interval, ranges...), named as SQL writes it: written as text that the
    /// server casts, and readable only when the query casts it to text.
    Other { name: String },
}

impl PgType {
    /// The type of a catalog OID; `name` is its SQL name (`format_type`), used for other types.
    pub(crate) fn from_oid(oid: u32, name: &str) -> PgType {
        if oid == VOID_OID {
            return PgType::Void;
        }
        for (ty, array, scalar) in BUILTIN {
            if oid == ty {
                return PgType::Scalar { scalar, oid };
            }
            if oid == array {
                return PgType::Array { scalar, oid, elem_oid: ty };
            }
        }
        PgType::Other { name: name.to_owned() }
    }

    /// The type of a result column or placeholder as sqlx resolved it.
    pub(crate) fn from_info(info: &PgTypeInfo) -> PgType {
        let oid = info.oid().map(|o| o.0);
        if let Some(oid) = oid {
            let found = PgType::from_oid(oid, info.name());
            if !matches!(found, PgType::Other { .. }) {
                return found;
            }
        }
        match (info.kind(), oid) {
            (PgTypeKind::Enum(_), Some(oid)) => PgType::Enum { oid, name: info.name().to_owned() },
            (PgTypeKind::Domain(base), _) => PgType::from_info(base),
            _ => PgType::Other { name: info.name().to_owned() },
        }
    }

    /// The type a bound value is declared as; other types are sent as text.
    pub(crate) fn declared(&self) -> PgTypeInfo {
        let oid = match self {
            PgType::Scalar { oid, .. } | PgType::Array { oid, .. } | PgType::Enum { oid, .. } => *oid,
            PgType::Other { .. } | PgType::Void => TEXT_OID,
        };
        PgTypeInfo::with_oid(Oid(oid))
    }

    /// Placeholder `n` in generated SQL: other types are cast from the text they are sent as.
    pub(crate) fn placeholder(&self, n: usize) -> String {
        match self {
            // `::text` first, so the server takes the param as text however it was prepared.
            PgType::Other { name } => format!("${n}::text::{name}"),
            _ => format!("${n}"),
        }
    }

    pub(crate) fn field_type(&self) -> FieldType {
        match self {
            PgType::Scalar { scalar, .. } => scalar.field_type(),
            PgType::Array { .. } => FieldType::Array,
            PgType::Enum { .. } => FieldType::String,
            PgType::Void => FieldType::Null,
            PgType::Other { .. } => FieldType::Any,
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            PgType::Scalar { scalar, .. } => scalar.sql_name().to_owned(),
            PgType::Array { scalar, .. } => format!("{}[]", scalar.sql_name()),
            PgType::Enum { name, .. } | PgType::Other { name } => name.clone(),
            PgType::Void => "void".to_owned(),
        }
    }

    /// Whether result values of this type can be read into records.
    pub(crate) fn is_readable(&self) -> bool {
        !matches!(self, PgType::Other { .. })
    }
}

/// A record value that does not convert to the type of its column or placeholder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} does not convert to {target}: {reason}")]
pub(crate) struct ConvertError {
    value: String,
    target: String,
    reason: &'static str,
}

impl ConvertError {
    fn new(value: &Value, target: &PgType, reason: &'static str) -> Self {
        let text = match value {
            Value::String(s) => format!("string {:?}", shorten(s)),
            other => format!("{} {}", other.type_name(), shorten(&other.to_string())),
        };
        Self { value: text, target: target.name(), reason }
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// A value converted for a PostgreSQL type: ready to bind, or to write as COPY text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(Decimal),
    /// Text, and the text form of enums and other types.
    Text(CompactString),
    Timestamptz(DateTime<Utc>),
    Timestamp(NaiveDateTime),
    Date(NaiveDate),
    Uuid(uuid::Uuid),
    Json(serde_json::Value),
    Jsonb(serde_json::Value),
    Bytes(Vec<u8>),
    Array {
        elem_oid: u32,
        items: Vec<Param>,
    },
}

/// Converts a record value for a column or placeholder of type `ty`.
pub(crate) fn to_param(value: &Value, ty: &PgType) -> Result<Param, ConvertError> {
    match (value, ty) {
        (Value::Null, _) => Ok(Param::Null),
        (_, PgType::Scalar { scalar, .. }) => to_scalar(value, *scalar, ty),
        (Value::Array(items), PgType::Array { scalar, elem_oid, .. }) => {
            let items = items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(Param::Null),
                    Value::Array(_) => {
                        Err(ConvertError::new(value, ty, "only one-dimensional arrays are supported"))
                    }
                    v => to_scalar(v, *scalar, ty),
                })
                .collect::<Result<_, _>>()?;
            Ok(Param::Array { elem_oid: *elem_oid, items })
        }
        (_, PgType::Array { .. }) => Err(ConvertError::new(value, ty, "expected an array")),
        (_, PgType::Enum { .. } | PgType::Other { .. }) => Ok(Param::Text(text_of(value))),
        (_, PgType::Void) => Ok(Param::Null),
    }
}

fn to_scalar(value: &Value, scalar: Scalar, ty: &PgType) -> Result<Param, ConvertError> {
    let fail = |reason| ConvertError::new(value, ty, reason);
    Ok(match scalar {
        Scalar::Bool => Param::Bool(match value {
            Value::Bool(b) => *b,
            Value::Int(0) => false,
            Value::Int(1) => true,
            Value::String(s) => {
                parse_bool(s).ok_or_else(|| fail("expected true/false, t/f, yes/no, on/off or 1/0"))?
            }
            _ => return Err(fail("expected a bool")),
        }),
        Scalar::Int2 => {
            Param::Int2(i16::try_from(to_int(value).map_err(fail)?).map_err(|_| fail("out of range"))?)
        }
        Scalar::Int4 => {
            Param::Int4(i32::try_from(to_int(value).map_err(fail)?).map_err(|_| fail("out of range"))?)
        }
        Scalar::Int8 => Param::Int8(to_int(value).map_err(fail)?),
        // Narrowing to real keeps the nearest value, as PostgreSQL does.
        Scalar::Float4 => Param::Float4(to_float(value).map_err(fail)? as f32),
        Scalar::Float8 => Param::Float8(to_float(value).map_err(fail)?),
        Scalar::Numeric => Param::Numeric(match value {
            Value::Int(i) => Decimal::from(*i),
            Value::Float(f) => Value::decimal_from_f64(*f).ok_or_else(|| fail("not a finite number"))?,
            Value::Decimal(d) => *d,
            Value::String(s) => parse_decimal(s).ok_or_else(|| fail("not a number"))?,
            _ => return Err(fail("expected a number")),
        }),
        Scalar::Text => Param::Text(text_of(value)),
        Scalar::Timestamptz => Param::Timestamptz(match value {
            Value::Timestamp(t) => *t,
            // A date and time without a zone is taken as UTC.
            Value::LocalDateTime(t) => t.and_utc(),
            Value::Date(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
            Value::String(s) => {
                parse_timestamptz(s).ok_or_else(|| fail("expected an ISO 8601 date and time"))?
            }
            _ => return Err(fail("expected a timestamp")),
        }),
        Scalar::Timestamp => Param::Timestamp(match value {
            Value::LocalDateTime(t) => *t,
            Value::Timestamp(t) => t.naive_utc(),
            Value::Date(d) => d.and_time(chrono::NaiveTime::MIN),
            Value::String(s) => parse_local(s)
                .or_else(|| parse_timestamptz(s).map(|t| t.naive_utc()))
                .ok_or_else(|| fail("expected an ISO 8601 date and time"))?,
            _ => return Err(fail("expected a date and time")),
        }),
        Scalar::Date => Param::Date(match value {
            Value::Date(d) => *d,
            Value::LocalDateTime(t) => t.date(),
            Value::Timestamp(t) => t.date_naive(),
            Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .ok()
                .or_else(|| parse_local(s).map(|t| t.date()))
                .ok_or_else(|| fail("expected a date (YYYY-MM-DD)"))?,
            _ => return Err(fail("expected a date")),
        }),
        Scalar::Uuid => Param::Uuid(match value {
            Value::Uuid(u) => *u,
            Value::String(s) => uuid::Uuid::parse_str(s.trim()).map_err(|_| fail("not a UUID"))?,
            _ => return Err(fail("expected a UUID")),
        }),
        Scalar::Json => Param::Json(serde_json::Value::from(value)),
        Scalar::Jsonb => Param::Jsonb(serde_json::Value::from(value)),
        Scalar::Bytea => Param::Bytes(match value {
            Value::Bytes(b) => b.clone(),
            Value::ObjectId(id) => id.to_vec(),
            // `\x...` is PostgreSQL's hex form (how bytes print); other text is stored as UTF-8.
            Value::String(s) => match s.strip_prefix("\\x") {
                Some(hex) => from_hex(hex).ok_or_else(|| fail("invalid hex after \\x"))?,
                None => s.as_bytes().to_vec(),
            },
            _ => return Err(fail("expected bytes")),
        }),
    })
}

/// A string as it is (short ones are copied without allocating); other values as they print.
fn text_of(value: &Value) -> CompactString {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string().into(),
    }
}

fn to_int(value: &Value) -> Result<i64, &'static str> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64 => Ok(*f as i64),
        Value::Float(_) => Err("not a whole number in range"),
        Value::Decimal(d) if d.fract().is_zero() => d.to_i64().ok_or("out of range"),
        Value::Decimal(_) => Err("not a whole number"),
        Value::String(s) => s.trim().parse().map_err(|_| "not an integer"),
        _ => Err("expected an integer"),
    }
}

fn to_float(value: &Value) -> Result<f64, &'static str> {
    match value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Decimal(d) => d.to_f64().ok_or("out of range"),
        Value::String(s) => s.trim().parse().map_err(|_| "not a number"),
        _ => Err("expected a number"),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    Decimal::from_str(s).ok().or_else(|| Decimal::from_scientific(s).ok())
}

fn parse_timestamptz(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|t| t.to_utc())
        .ok()
        .or_else(|| parse_local(s).map(|t| t.and_utc()))
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_time(chrono::NaiveTime::MIN)))
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

impl Param {
    /// Writes the value in PostgreSQL's binary format for its type.
    fn encode(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Int2(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Int4(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Int8(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Float4(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Float8(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Numeric(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Timestamptz(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Timestamp(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Date(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            Param::Uuid(v) => Encode::<Postgres>::encode_by_ref(v, buf),
            // Text, varchar, char(n), name and enum labels share one binary form: the UTF-8 bytes.
            Param::Text(v) => {
                buf.extend_from_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            // json is sent as its text; jsonb is its text after a format version byte of 1.
            Param::Json(v) => {
                serde_json::to_writer(&mut **buf, v)?;
                Ok(IsNull::No)
            }
            Param::Jsonb(v) => {
                buf.push(1);
                serde_json::to_writer(&mut **buf, v)?;
                Ok(IsNull::No)
            }
            Param::Bytes(v) => {
                buf.extend_from_slice(v);
                Ok(IsNull::No)
            }
            Param::Array { elem_oid, items } => {
                // Header: dimensions, has-nulls flag, element type, then (length, lower bound)
                // per dimension; then each element as a length (-1 for NULL) and its bytes.
                let has_null = items.iter().any(|p| matches!(p, Param::Null));
                buf.extend_from_slice(&i32::from(!items.is_empty()).to_be_bytes());
                buf.extend_from_slice(&i32::from(has_null).to_be_bytes());
                buf.extend_from_slice(&elem_oid.to_be_bytes());
                if !items.is_empty() {
                    buf.extend_from_slice(&i32::try_from(items.len())?.to_be_bytes());
                    buf.extend_from_slice(&1i32.to_be_bytes());
                }
                for item in items {
                    let start = buf.len();
                    buf.extend_from_slice(&[0; 4]);
                    let size = match item.encode(buf)? {
                        IsNull::Yes => -1,
                        IsNull::No => i32::try_from(buf.len() - start - 4)?,
                    };
                    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
                }
                Ok(IsNull::No)
            }
        }
    }

    /// The value in PostgreSQL's text input form; `None` for NULL.
    pub(crate) fn text(&self) -> Option<String> {
        Some(match self {
            Param::Null => return None,
            Param::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
            Param::Int2(v) => v.to_string(),
            Param::Int4(v) => v.to_string(),
            Param::Int8(v) => v.to_string(),
            Param::Float4(v) => float_text(f64::from(*v), v.to_string()),
            Param::Float8(v) => float_text(*v, v.to_string()),
            Param::Numeric(v) => v.to_string(),
            Param::Text(v) => v.to_string(),
            Param::Timestamptz(v) => v.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Param::Timestamp(v) => v.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            Param::Date(v) => v.format("%Y-%m-%d").to_string(),
            Param::Uuid(v) => v.to_string(),
            Param::Json(v) | Param::Jsonb(v) => v.to_string(),
            Param::Bytes(v) => format!("\\x{}", v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            Param::Array { items, .. } => {
                // Every element quoted: valid for every element type, and no special cases.
                let items: Vec<String> = items
                    .iter()
                    .map(|item| match item.text() {
                        None => "NULL".to_owned(),
                        Some(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
                    })
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        })
    }

    /// Appends the value as one field of a row in COPY's text format.
    pub(crate) fn write_copy(&self, out: &mut Vec<u8>) {
        // The common types go straight into `out`: this runs for every value of a bulk load.
        match self {
            Param::Null => out.extend_from_slice(b"\\N"),
            Param::Bool(b) => out.push(if *b { b't' } else { b'f' }),
            Param::Int2(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Param::Int4(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Param::Int8(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Param::Text(v) => escape_copy(v, out),
            other => escape_copy(&other.text().unwrap_or_default(), out),
        }
    }
}

/// Appends `text` as a COPY text field: backslash, newline, carriage return and tab escaped.
fn escape_copy(text: &str, out: &mut Vec<u8>) {
    if !text.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t')) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.push(b),
        }
    }
}

/// Rust prints non-finite floats as `inf` and `NaN`; these are PostgreSQL's spellings.
fn float_text(f: f64, shortest: String) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        shortest
    }
}

/// A converted value with the type it is declared as, for `query.bind`.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) value: Param,
    pub(crate) ty: PgTypeInfo,
}

impl Type<Postgres> for Bound {
    // Only a default: every value declares its own type through `produces`.
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(TEXT_OID))
    }
}

impl Encode<'_, Postgres> for Bound {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        self.value.encode(buf)
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }
}

/// Reads one value of a result row into a record value.
pub(crate) fn read(value: PgValueRef<'_>, ty: &PgType) -> Result<Value, BoxDynError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        PgType::Scalar { scalar, .. } => read_scalar(value, *scalar),
        PgType::Array { scalar, .. } => read_array(value, *scalar),
        PgType::Enum { .. } => Ok(Value::String(<&str as Decode<Postgres>>::decode(value)?.into())),
        PgType::Other { name } => {
            Err(format!("type {name} has no record value; cast it to text in the query").into())
        }
        PgType::Void => Ok(Value::Null),
    }
}

fn read_scalar(v: PgValueRef<'_>, scalar: Scalar) -> Result<Value, BoxDynError> {
    Ok(match scalar {
        Scalar::Bool => Value::Bool(Decode::<Postgres>::decode(v)?),
        Scalar::Int2 => Value::Int(<i16 as Decode<Postgres>>::decode(v)?.into()),
        Scalar::Int4 => Value::Int(<i32 as Decode<Postgres>>::decode(v)?.into()),
        Scalar::Int8 => Value::Int(Decode::<Postgres>::decode(v)?),
        Scalar::Float4 => Value::Float(widen(Decode::<Postgres>::decode(v)?)),
        Scalar::Float8 => Value::Float(Decode::<Postgres>::decode(v)?),
        Scalar::Numeric => Value::Decimal(Decode::<Postgres>::decode(v)?),
        Scalar::Text => Value::String(<&str as Decode<Postgres>>::decode(v)?.into()),
        Scalar::Timestamptz => Value::Timestamp(Decode::<Postgres>::decode(v)?),
        Scalar::Timestamp => Value::LocalDateTime(Decode::<Postgres>::decode(v)?),
        Scalar::Date => Value::Date(Decode::<Postgres>::decode(v)?),
        Scalar::Uuid => Value::Uuid(Decode::<Postgres>::decode(v)?),
        Scalar::Json | Scalar::Jsonb => Value::from(&<serde_json::Value as Decode<Postgres>>::decode(v)?),
        Scalar::Bytea => Value::Bytes(Decode::<Postgres>::decode(v)?),
    })
}

fn read_array(v: PgValueRef<'_>, scalar: Scalar) -> Result<Value, BoxDynError> {
    fn items<T>(v: PgValueRef<'_>, f: impl Fn(T) -> Value) -> Result<Value, BoxDynError>
    where
        T: for<'a> Decode<'a, Postgres> + Type<Postgres>,
    {
        let items: Vec<Option<T>> = Decode::<Postgres>::decode(v)?;
        Ok(Value::Array(items.into_iter().map(|x| x.map_or(Value::Null, &f)).collect()))
    }
    match scalar {
        Scalar::Bool => items(v, Value::Bool),
        Scalar::Int2 => items(v, |x: i16| Value::Int(x.into())),
        Scalar::Int4 => items(v, |x: i32| Value::Int(x.into())),
        Scalar::Int8 => items(v, Value::Int),
        Scalar::Float4 => items(v, |x: f32| Value::Float(widen(x))),
        Scalar::Float8 => items(v, Value::Float),
        Scalar::Numeric => items(v, Value::Decimal),
        Scalar::Text => items(v, |x: String| Value::from(x)),
        Scalar::Timestamptz => items(v, Value::Timestamp),
        Scalar::Timestamp => items(v, Value::LocalDateTime),
        Scalar::Date => items(v, Value::Date),
        Scalar::Uuid => items(v, Value::Uuid),
        Scalar::Json | Scalar::Jsonb => items(v, |x: serde_json::Value| Value::from(&x)),
        Scalar::Bytea => items(v, Value::Bytes),
    }
}

/// A real as the double a person would write: 0.1 stays 0.1 rather than 0.10000000149011612.
fn widen(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::from(f))
}

#[cfg(test)]
mod tests {
    //! Round trips of every mapped type through a temporary table of the machine's PostgreSQL
    //! (`POSTGRESQL_URL`, default `postgres://postgres@127.0.0.1:5432/test`): written with bound
    //! params and with COPY text, read back as record values.

    use std::str::FromStr;

    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    use flow_model::{Record, Value};
    use rust_decimal::Decimal;
    use sqlx::postgres::{PgConnection, PgRow};
    use sqlx::{Column, Connection, Executor, Row, Statement};

    use super::*;

    fn url() -> String {
        std::env::var("POSTGRESQL_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    fn ts(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("timestamp").to_utc()
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").expect("local timestamp")
    }

    fn json(text: &str) -> Value {
        Value::from(&serde_json::from_str::<serde_json::Value>(text).expect("json"))
    }

    /// (column, SQL type, value) for every mapped type, with values that are hard to get right.
    fn samples() -> Vec<(&'static str, &'static str, Value)> {
        vec![
            ("b", "boolean", Value::Bool(true)),
            ("i2", "smallint", Value::Int(-32768)),
            ("i4", "integer", Value::Int(2_147_483_647)),
            ("i8", "bigint", Value::Int(i64::MIN)),
            ("f4", "real", Value::Float(0.1)),
            ("f8", "double precision", Value::Float(-1.0e-300)),
            (
                "n",
                "numeric(30,4)",
                Value::Decimal(Decimal::from_str("-12345678901234.5678").expect("decimal")),
            ),
            ("t", "text", Value::from("tab\there \"quoted\" back\\slash\nnew line\r ünïcode ✓ {a,b} NULL")),
            ("vc", "varchar(20)", Value::from("varchar")),
            ("ch", "char(3)", Value::from("abc")),
            ("nm", "name", Value::from("a_name")),
            ("tz", "timestamptz", Value::Timestamp(ts("2024-02-29T23:59:59.123456Z"))),
            ("ts", "timestamp", Value::LocalDateTime(local("1999-12-31T12:00:00.000001"))),
            ("d", "date", Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).expect("date"))),
            ("u", "uuid", Value::Uuid(uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef))),
            ("j", "json", json(r#"{"a": [1, "x\ty", null, 2.5], "b": {"c": true}}"#)),
            ("jb", "jsonb", json(r#"[1, 2.5, "s\\", {"k": null}]"#)),
            ("by", "bytea", Value::Bytes(vec![0, 1, 255, b'\\', b'\t', b'\n'])),
            ("ai", "integer[]", Value::Array(vec![Value::Int(1), Value::Null, Value::Int(-3)])),
            (
                "at",
                "text[]",
                Value::Array(vec![
                    Value::from("a,b"),
                    Value::from("{\"}"),
                    Value::Null,
                    Value::from("NULL"),
                    Value::from("back\\slash tab\t"),
                    Value::from(""),
                ]),
            ),
            ("atz", "timestamptz[]", Value::Array(vec![Value::Timestamp(ts("2000-01-01T00:00:00Z"))])),
            ("au", "uuid[]", Value::Array(vec![])),
            (
                "an",
                "numeric[]",
                Value::Array(vec![Value::Decimal(Decimal::from_str("0.001").expect("decimal"))]),
            ),
            ("ab", "boolean[]", Value::Array(vec![Value::Bool(false), Value::Bool(true)])),
            ("aj", "jsonb[]", Value::Array(vec![json(r#"{"x": 1}"#)])),
            ("aby", "bytea[]", Value::Array(vec![Value::Bytes(vec![7, 8])])),
            ("nul", "integer", Value::Null),
        ]
    }

    async fn connect() -> PgConnection {
        PgConnection::connect(&url()).await.expect("PostgreSQL of this machine (set POSTGRESQL_URL)")
    }

    /// A temporary table (gone with the connection) with one column per sample.
    async fn table(conn: &mut PgConnection, samples: &[(&str, &str, Value)]) -> String {
        let name = format!("flow_types_{:08x}", fastrand::u32(..));
        let columns: Vec<String> = samples.iter().map(|(c, t, _)| format!("{c} {t}")).collect();
        conn.execute(format!("CREATE TEMP TABLE {name} ({})", columns.join(", ")).as_str())
            .await
            .expect("create");
        name
    }

    /// The table's rows as records, read the way the query node reads them.
    async fn read_all(conn: &mut PgConnection, table: &str) -> Vec<Record> {
        let rows: Vec<PgRow> = sqlx::query(&format!("SELECT * FROM {table} ORDER BY ctid"))
            .fetch_all(&mut *conn)
            .await
            .expect("select");
        rows.iter()
            .map(|row| {
                row.columns()
                    .iter()
                    .map(|c| {
                        let ty = PgType::from_info(c.type_info());
                        let value = read(row.try_get_raw(c.ordinal()).expect("raw"), &ty)
                            .unwrap_or_else(|e| panic!("read {}: {e}", c.name()));
                        (c.name().into(), value)
                    })
                    .collect()
            })
            .collect()
    }

    /// The placeholder types the server infers for inserting into every column.
    async fn column_types(conn: &mut PgConnection, table: &str, n: usize) -> (String, Vec<PgTypeInfo>) {
        let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
        let sql = format!("INSERT INTO {table} VALUES ({})", placeholders.join(", "));
        let statement = conn.prepare(&sql).await.expect("prepare");
        let Some(sqlx::Either::Left(types)) = statement.parameters() else { panic!("no parameter types") };
        let types = types.to_vec();
        (sql, types)
    }

    #[tokio::test]
    async fn every_type_round_trips_through_bound_params_and_copy() {
        let mut conn = connect().await;
        let samples = samples();
        let table = table(&mut conn, &samples).await;
        let (insert, types) = column_types(&mut conn, &table, samples.len()).await;

        let mut query = sqlx::query(&insert);
        for ((column, _, value), info) in samples.iter().zip(&types) {
            let param = to_param(value, &PgType::from_info(info)).unwrap_or_else(|e| panic!("{column}: {e}"));
            query = query.bind(Bound { value: param, ty: info.clone() });
        }
        query.execute(&mut conn).await.expect("insert with bound params");

        let mut data = Vec::new();
        for (i, ((column, _, value), info)) in samples.iter().zip(&types).enumerate() {
            if i > 0 {
                data.push(b'\t');
            }
            to_param(value, &PgType::from_info(info))
                .unwrap_or_else(|e| panic!("{column}: {e}"))
                .write_copy(&mut data);
        }
        data.push(b'\n');
        let mut copy =
            conn.copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT text)")).await.expect("copy");
        copy.send(data).await.expect("copy data");
        copy.finish().await.expect("copy finish");

        let expected: Record = samples.iter().map(|(c, _, v)| ((*c).into(), v.clone())).collect();
        let rows = read_all(&mut conn, &table).await;
        assert_eq!(rows.len(), 2);
        for (row, how) in rows.iter().zip(["bound params", "COPY"]) {
            for (column, _, value) in &samples {
                assert_eq!(row.get(column), Some(value), "column {column} written with {how}");
            }
        }
        assert_eq!(rows[0], expected);
    }

    #[tokio::test]
    async fn values_are_converted_to_the_column_type() {
        let mut conn = connect().await;
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            ("u", "uuid", Value::from(" 01234567-89ab-cdef-0123-456789abcdef "), {
                Value::Uuid(uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef))
            }),
            (
                "tz",
                "timestamptz",
                Value::from("2024-05-01T12:00:00+02:00"),
                Value::Timestamp(ts("2024-05-01T10:00:00Z")),
            ),
            (
                "tz2",
                "timestamptz",
                Value::from("2024-05-01 10:00:00"),
                Value::Timestamp(ts("2024-05-01T10:00:00Z")),
            ),
            ("ts", "timestamp", Value::Timestamp(ts("2024-05-01T10:00:00Z")), {
                Value::LocalDateTime(local("2024-05-01T10:00:00"))
            }),
            (
                "d",
                "date",
                Value::from("2024-05-01"),
                Value::Date(NaiveDate::from_ymd_opt(2024, 5, 1).expect("date")),
            ),
            ("n", "numeric", Value::Int(42), Value::Decimal(Decimal::from(42))),
            ("n2", "numeric", Value::from("1.5e3"), Value::Decimal(Decimal::from(1500))),
            ("n3", "numeric", Value::Float(0.1), Value::Decimal(Decimal::from_str("0.1").expect("decimal"))),
            ("i", "integer", Value::from("17"), Value::Int(17)),
            ("i2", "bigint", Value::Float(3.0), Value::Int(3)),
            ("f", "double precision", Value::Int(2), Value::Float(2.0)),
            ("b", "boolean", Value::from("yes"), Value::Bool(true)),
            ("t", "text", Value::Int(5), Value::from("5")),
            ("jb", "jsonb", Value::from("plain"), json(r#""plain""#)),
            ("by", "bytea", Value::from("\\x00ff"), Value::Bytes(vec![0, 255])),
            ("by2", "bytea", Value::from("hi"), Value::Bytes(b"hi".to_vec())),
            ("ai", "bigint[]", Value::Array(vec![Value::from("1"), Value::Float(2.0)]), {
                Value::Array(vec![Value::Int(1), Value::Int(2)])
            }),
        ];
        let samples: Vec<(&str, &str, Value)> =
            cases.iter().map(|(c, t, v, _)| (*c, *t, v.clone())).collect();
        let table = table(&mut conn, &samples).await;
        let (insert, types) = column_types(&mut conn, &table, samples.len()).await;
        let mut query = sqlx::query(&insert);
        for ((column, _, value), info) in samples.iter().zip(&types) {
            let param = to_param(value, &PgType::from_info(info)).unwrap_or_else(|e| panic!("{column}: {e}"));
            query = query.bind(Bound { value: param, ty: info.clone() });
        }
        query.execute(&mut conn).await.expect("insert");
        let rows = read_all(&mut conn, &table).await;
        for (column, _, _, expected) in &cases {
            assert_eq!(rows[0].get(column), Some(expected), "column {column}");
        }
    }

    #[test]
    fn values_that_do_not_fit_are_refused_with_the_reason() {
        let int4 = PgType::from_oid(23, "integer");
        let int2 = PgType::from_oid(21, "smallint");
        let uuid = PgType::from_oid(2950, "uuid");
        let err = |v: Value, ty: &PgType| to_param(&v, ty).expect_err("refused").to_string();
        assert_eq!(
            err(Value::from("abc"), &int4),
            "string \"abc\" does not convert to integer: not an integer"
        );
        assert_eq!(err(Value::Int(70_000), &int2), "int 70000 does not convert to smallint: out of range");
        assert!(err(Value::Float(2.5), &int4).contains("not a whole number"));
        assert!(err(Value::from("nope"), &uuid).contains("not a UUID"));
        assert!(err(Value::Int(1), &PgType::from_oid(1007, "integer[]")).contains("expected an array"));
    }

    #[tokio::test]
    async fn other_types_travel_as_text_and_enums_as_labels() {
        let mut conn = connect().await;
        // Temporary type and table: they go with the connection, even when an assertion fails.
        let suffix = format!("{:08x}", fastrand::u32(..));
        let mood = format!("pg_temp.flow_mood_{suffix}");
        conn.execute(format!("CREATE TYPE {mood} AS ENUM ('happy', 'sad')").as_str()).await.expect("enum");
        let table = format!("flow_other_{suffix}");
        conn.execute(format!("CREATE TEMP TABLE {table} (addr inet, m {mood})").as_str())
            .await
            .expect("create");
        let inet = PgType::from_oid(869, "inet");
        assert!(matches!(inet, PgType::Other { .. }));
        // Other types are sent as text and cast by the server, as the sinks write them.
        let sql = format!("INSERT INTO {table} VALUES ({}, $2)", inet.placeholder(1));
        let statement = conn.prepare(&sql).await.expect("prepare");
        let Some(sqlx::Either::Left(types)) = statement.parameters() else { panic!("types") };
        let enum_ty = PgType::from_info(&types[1]);
        assert!(matches!(enum_ty, PgType::Enum { .. }), "{enum_ty:?}");
        sqlx::query(&sql)
            .bind(Bound {
                value: to_param(&Value::from("10.0.0.1"), &inet).expect("inet"),
                ty: inet.declared(),
            })
            .bind(Bound {
                value: to_param(&Value::from("sad"), &enum_ty).expect("enum"),
                ty: types[1].clone(),
            })
            .execute(&mut conn)
            .await
            .expect("insert");
        let row = sqlx::query(&format!("SELECT addr::text AS addr, m FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("select");
        let m = PgType::from_info(row.columns()[1].type_info());
        assert_eq!(read(row.try_get_raw(1).expect("raw"), &m).expect("label"), Value::from("sad"));
        assert_eq!(
            read(row.try_get_raw(0).expect("raw"), &PgType::from_info(row.columns()[0].type_info()))
                .expect("text"),
            Value::from("10.0.0.1/32")
        );
    }
}
