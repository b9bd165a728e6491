//! Conversions between Rust values and their stored form. Both backends: enums as their serde
//! snake_case names, unsigned counters as signed 64-bit integers. SQLite only: timestamps as
//! fixed-width RFC 3339 UTC text (text order is time order, and nanoseconds survive the round
//! trip), uuids as hyphenated lower-case text (text order is uuid order).
//! Errors here do not know the database; `CodecError::at` adds it.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::StoreError;

/// A value that cannot be stored or read back, before the file it concerns is known.
#[derive(Debug)]
pub(crate) enum CodecError {
    Unstorable { what: String, reason: String },
    Corrupt { column: &'static str, value: String, reason: String },
}

impl CodecError {
    pub(crate) fn at(self, database: &str) -> StoreError {
        let database = database.to_owned();
        match self {
            Self::Unstorable { what, reason } => StoreError::Unstorable { database, what, reason },
            Self::Corrupt { column, value, reason } => {
                StoreError::Corrupt { database, column, value, reason }
            }
        }
    }

    fn corrupt(column: &'static str, value: impl ToString, reason: impl ToString) -> Self {
        Self::Corrupt { column, value: value.to_string(), reason: reason.to_string() }
    }
}

/// The current time as both backends store it: PostgreSQL keeps microseconds, so a value returned
/// at creation equals the one read back later.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_time(column: &'static str, text: &str) -> Result<DateTime<Utc>, CodecError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| CodecError::corrupt(column, text, e))
}

pub(crate) fn parse_optional_time(
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<DateTime<Utc>>, CodecError> {
    text.map(|t| parse_time(column, t)).transpose()
}

/// The serde name of a unit enum variant (`ExecutionState::Running` -> `running`).
pub(crate) fn enum_text<T: Serialize>(what: &str, value: &T) -> Result<String, CodecError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(CodecError::Unstorable {
            what: what.to_owned(),
            reason: format!("expected a name, serialized as {other}"),
        }),
        Err(e) => Err(CodecError::Unstorable { what: what.to_owned(), reason: e.to_string() }),
    }
}

pub(crate) fn parse_enum<T: DeserializeOwned>(column: &'static str, text: &str) -> Result<T, CodecError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| CodecError::corrupt(column, text, e))
}

pub(crate) fn parse_optional_enum<T: DeserializeOwned>(
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, CodecError> {
    text.map(|t| parse_enum(column, t)).transpose()
}

pub(crate) fn parse_uuid(column: &'static str, text: &str) -> Result<Uuid, CodecError> {
    Uuid::parse_str(text).map_err(|e| CodecError::corrupt(column, text, e))
}

/// An unsigned number as a database integer, which is signed.
pub(crate) fn int<T: Copy + ToString + TryInto<i64>>(what: &str, n: T) -> Result<i64, CodecError> {
    n.try_into().map_err(|_| CodecError::Unstorable {
        what: format!("{what} {}", n.to_string()),
        reason: "it exceeds the largest storable integer (i64)".to_owned(),
    })
}

/// A stored integer back as the unsigned type it was written from.
pub(crate) fn parse_int<T: TryFrom<i64>>(column: &'static str, n: i64) -> Result<T, CodecError> {
    T::try_from(n).map_err(|_| CodecError::corrupt(column, n, "out of range"))
}

/// JSON text of a value the schema stores as JSON (records, options, variables).
pub(crate) fn json_text<T: Serialize>(what: &str, value: &T) -> Result<String, CodecError> {
    serde_json::to_string(value)
        .map_err(|e| CodecError::Unstorable { what: what.to_owned(), reason: e.to_string() })
}

pub(crate) fn parse_json<T: DeserializeOwned>(column: &'static str, text: &str) -> Result<T, CodecError> {
    serde_json::from_str(text).map_err(|e| CodecError::corrupt(column, text, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_runtime::{ErrorKind, ExecutionState};

    #[test]
    fn times_keep_nanoseconds_and_sort_as_text() {
        let a = DateTime::from_timestamp(1_700_000_000, 5).expect("time");
        let b = DateTime::from_timestamp(1_700_000_000, 400_000_000).expect("time");
        let c = DateTime::from_timestamp(1_700_000_001, 0).expect("time");
        let texts = [a, b, c].map(time_text);
        assert!(texts[0] < texts[1] && texts[1] < texts[2], "{texts:?}");
        assert_eq!(parse_time("t", &texts[0]).expect("parse"), a);
    }

    #[test]
    fn enums_are_their_snake_case_names() {
        assert_eq!(enum_text("state", &ExecutionState::Running).expect("encode"), "running");
        assert_eq!(enum_text("kind", &ErrorKind::CircuitOpen).expect("encode"), "circuit_open");
        let kind: ErrorKind = parse_enum("kind", "circuit_open").expect("decode");
        assert_eq!(kind, ErrorKind::CircuitOpen);
        assert!(parse_enum::<ExecutionState>("state", "exploded").is_err());
    }

    #[test]
    fn counters_above_i64_are_refused_not_wrapped() {
        assert_eq!(int("records_in", 7u64).expect("fits"), 7);
        assert!(int("records_in", u64::MAX).is_err());
        assert!(parse_int::<u64>("records_in", -1).is_err());
    }
}
