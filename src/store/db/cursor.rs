//! Opaque feed cursors over the full sort key `(created_at, id)`: a bare
//! timestamp would skip or repeat rows that share a `created_at`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::error::{StoreError, StoreResult};

const PREFIX: &str = "c1:";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

impl Cursor {
    pub fn new(created_at: DateTime<Utc>, id: impl Into<String>) -> Self {
        Self {
            created_at,
            id: id.into(),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        Self::write_encoded(self.created_at, &self.id, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the encoding of `(created_at, id)` to `out` (the fast path
    /// writes it into the response without a `Cursor`).
    pub fn write_encoded(created_at: DateTime<Utc>, id: &str, out: &mut Vec<u8>) {
        let raw = format!("{PREFIX}{}:{id}", created_at.timestamp_micros());
        let start = out.len();
        out.resize(start + raw.len().div_ceil(3) * 4, 0);
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
    }

    pub fn decode(text: &str) -> StoreResult<Self> {
        let malformed = || StoreError::invalid("after", "malformed cursor");
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| malformed())?;
        let raw = String::from_utf8(bytes).map_err(|_| malformed())?;
        let rest = raw.strip_prefix(PREFIX).ok_or_else(malformed)?;
        let (micros, id) = rest.split_once(':').ok_or_else(malformed)?;
        let micros: i64 = micros.parse().map_err(|_| malformed())?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(malformed)?;
        if id.is_empty() {
            return Err(malformed());
        }
        Ok(Self::new(created_at, id))
    }

    pub fn parse_opt(text: Option<&str>) -> StoreResult<Option<Self>> {
        text.map(Self::decode).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ids_with_colons() {
        let c = Cursor::new(
            DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            "a:b:c",
        );
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "!!!",
            "Zm9v",
            &URL_SAFE_NO_PAD.encode("c1:abc:x"),
            &URL_SAFE_NO_PAD.encode("c1:12:"),
        ] {
            assert!(
                matches!(
                    Cursor::decode(bad),
                    Err(StoreError::InvalidInput { field: "after", .. })
                ),
                "{bad}"
            );
        }
    }
}
