//! The one table of `Execution`'s scalar fields.
//!
//! Each field is declared once, in `types.rs`'s `execution_object!`: its
//! GraphQL name, its schema type, and how it is read from a row. From that
//! line come the `#[Object]` getter (the generic path, the reference), the
//! fast path's writer (JSON written straight from the row, `Scalar::write`)
//! and the list the equivalence test draws its random selections from
//! (`SCALAR_FIELDS`). A field added to the table is in all three.
//!
//! What a read yields is a [`FieldValue`]: it knows the schema type the
//! getter returns (`output`) and writes exactly the JSON async-graphql would
//! serialise for that output (`write_json`), without allocating (but for
//! `cursor`, encoded through one string).

use std::io::Write;

use async_graphql::{EnumType, Json, ID};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value as JsonValue;

use super::types::ExecutionStatus;
use crate::store::{self, Cursor};

/// A value read from a row for one field.
pub trait FieldValue {
    /// What the generic getter returns (its schema type).
    type Output;
    fn output(self) -> Self::Output;
    /// The JSON async-graphql serialises for `output()`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Text that the schema types as `ID`.
pub struct Id<'r>(pub &'r str);

/// The opaque `(createdAt, id)` cursor of a row.
pub struct CursorOf<'r>(pub &'r store::Execution);

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // JSON escapes only control characters, '"' and '\\'; ids and names
    // rarely hold any, and are then copied as they are.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing to a Vec cannot fail; serde_json escapes exactly as it does
    // for async-graphql's response.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// RFC 3339 as chrono's `to_rfc3339` writes it (async-graphql's `DateTime`
/// scalar): sub-second digits only as many as needed (0, 3, 6 or 9), offset
/// `+00:00`. Written digit by digit: chrono's formatter took a tenth of the
/// fast path's time.
fn write_time(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    let (date, time) = (t.date_naive(), t.time());
    let (year, mut second, mut nanos) = (date.year(), time.second(), time.nanosecond());
    if !(0..=9999).contains(&year) {
        let _ = write!(out, "\"{}\"", t.to_rfc3339());
        return;
    }
    if nanos >= 1_000_000_000 {
        // A leap second, as chrono writes it.
        second += 1;
        nanos -= 1_000_000_000;
    }
    fn digits(out: &mut Vec<u8>, value: u32, width: u32) {
        for place in (0..width).rev() {
            out.push(b'0' + (value / 10u32.pow(place) % 10) as u8);
        }
    }
    out.push(b'"');
    digits(out, year as u32, 4);
    out.push(b'-');
    digits(out, date.month(), 2);
    out.push(b'-');
    digits(out, date.day(), 2);
    out.push(b'T');
    digits(out, time.hour(), 2);
    out.push(b':');
    digits(out, time.minute(), 2);
    out.push(b':');
    digits(out, second, 2);
    if nanos != 0 {
        out.push(b'.');
        if nanos % 1_000_000 == 0 {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.extend_from_slice(b"+00:00\"");
}

impl<'r> FieldValue for Id<'r> {
    type Output = ID;
    fn output(self) -> ID {
        ID(self.0.to_owned())
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self.0);
    }
}

impl<'r> FieldValue for &'r str {
    type Output = &'r str;
    fn output(self) -> Self {
        self
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

/// Any field may be null: null, or the value as its own type writes it.
impl<T: FieldValue> FieldValue for Option<T> {
    type Output = Option<T::Output>;
    fn output(self) -> Self::Output {
        self.map(T::output)
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl FieldValue for i32 {
    type Output = i32;
    fn output(self) -> i32 {
        self
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{self}");
    }
}

impl FieldValue for bool {
    type Output = bool;
    fn output(self) -> bool {
        self
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl FieldValue for DateTime<Utc> {
    type Output = DateTime<Utc>;
    fn output(self) -> Self {
        self
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_time(out, self);
    }
}

impl FieldValue for store::ExecutionStatus {
    type Output = ExecutionStatus;
    fn output(self) -> ExecutionStatus {
        self.into()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        let status = ExecutionStatus::from(*self);
        let name = ExecutionStatus::items()
            .iter()
            .find(|item| item.value == status)
            .map_or("", |item| item.name);
        write_str(out, name);
    }
}

impl<'r> FieldValue for &'r JsonValue {
    type Output = Json<&'r JsonValue>;
    fn output(self) -> Self::Output {
        Json(self)
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *out, self);
    }
}

impl<'r> FieldValue for CursorOf<'r> {
    type Output = String;
    fn output(self) -> String {
        Cursor::new(self.0.created_at, self.0.id.clone()).encode()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        // Base64 needs no escaping.
        out.push(b'"');
        Cursor::write_encoded(self.0.created_at, &self.0.id, out);
        out.push(b'"');
    }
}

/// Declares `Execution`'s `#[Object]` from the field table and the
/// relations, and the fast path's `Scalar` from the same table. Each table
/// line is `/// docs` then `"graphqlName" getter: SchemaType = |row| read;`.
macro_rules! execution_object {
    (
        scalars {
            $( $(#[$doc:meta])* $name:literal $getter:ident : $ty:ty = |$row:ident| $read:expr; )*
        }
        relations { $($relations:tt)* }
    ) => {
        #[async_graphql::Object]
        impl Execution {
            $(
                $(#[$doc])*
                async fn $getter(&self) -> $ty {
                    let $row: &$crate::store::Execution = &self.row;
                    $crate::graphql::fields::FieldValue::output($read)
                }
            )*
            $($relations)*
        }

        /// A scalar field of `Execution` (one per line of the table).
        #[derive(Clone, Copy, Debug)]
        #[allow(non_camel_case_types)]
        pub enum Scalar {
            $($getter,)*
        }

        /// The GraphQL names of `Execution`'s scalar fields.
        pub const SCALAR_FIELDS: &[&str] = &[$($name,)*];

        impl Scalar {
            pub fn of(name: &str) -> Option<Scalar> {
                match name {
                    $($name => Some(Scalar::$getter),)*
                    _ => None,
                }
            }

            /// The column this field reads (besides the keys every row
            /// carries): the getter is named after it. `cursor` names no
            /// column: it reads keys only.
            pub fn column(self) -> &'static str {
                match self {
                    $(Scalar::$getter => stringify!($getter),)*
                }
            }

            /// Writes this field of `row` as its getter's answer would be
            /// serialised.
            pub fn write(self, row: &$crate::store::Execution, out: &mut Vec<u8>) {
                match self {
                    $(Scalar::$getter => {
                        let $row = row;
                        $crate::graphql::fields::FieldValue::write_json(&$read, out)
                    })*
                }
            }
        }
    };
}

pub(crate) use execution_object;

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::ScalarType;

    /// The writer agrees with async-graphql's own `DateTime` scalar on every
    /// sub-second precision.
    #[test]
    fn times_are_written_as_the_scalar_serialises_them() {
        let base = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let far = DateTime::from_timestamp(253_402_300_800, 0).unwrap(); // year 10000
        let early = DateTime::from_timestamp(-62_000_000_000, 0).unwrap();
        for nanos in [0, 1_000_000, 120_000_000, 1_000, 123_456, 1, 999_999_999] {
            for start in [base, far, early] {
                let t = start + chrono::Duration::nanoseconds(nanos);
                let mut out = Vec::new();
                t.write_json(&mut out);
                let expected = serde_json::to_string(&t.to_value()).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), expected, "{t:?}");
            }
        }
    }

    /// The fast path reads only the columns its fields name: each field of
    /// the table must name its column (or read keys only, as `cursor`).
    #[test]
    fn every_field_names_its_column() {
        use super::super::types::{Scalar, SCALAR_FIELDS};
        for name in SCALAR_FIELDS {
            let scalar = Scalar::of(name).unwrap();
            assert!(
                store::Columns::is_column(scalar.column()) || *name == "cursor",
                "{name} reads no column of its own"
            );
        }
    }

    /// Strings come out as serde_json writes them (async-graphql's
    /// response), escapes included.
    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for text in [
            "plain-id.0",
            "",
            "quote \" here",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "ünïcode ✓",
            "\u{7f}",
            "/",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }

    #[test]
    fn statuses_are_written_as_the_enum_names_them() {
        for status in store::ExecutionStatus::ALL {
            let mut out = Vec::new();
            status.write_json(&mut out);
            let value = async_graphql::resolver_utils::enum_value(ExecutionStatus::from(status));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
    }
}
