//! The legacy binary record encoding, and its conversion to JSON.
//!
//! A legacy record is a list of fields; a field that is absent is simply not listed, and a
//! field that is present but null has the null tag, so null and absent stay distinct:
//!
//! ```text
//! record := magic "LR1" | count: u16 LE | field * count
//! field  := name_len: u16 LE | name: UTF-8 bytes | tag: u8 | value
//! tag 0  null     (no value bytes)
//! tag 1  string   len: u32 LE | UTF-8 bytes
//! tag 2  integer  i64 LE
//! tag 3  boolean  u8 (0 or 1)
//! ```
//!
//! Decoding is strict: trailing bytes, a repeated field name, an unknown tag, a truncated
//! value or invalid UTF-8 are errors naming the offset.

use serde_json::{Map, Value};

const MAGIC: &[u8; 3] = b"LR1";

/// Encodes a JSON object as a legacy record. Values other than null, strings, integers and
/// booleans are rejected (the legacy format has no other types).
pub fn encode(record: &Map<String, Value>) -> Result<Vec<u8>, String> {
    let mut out = MAGIC.to_vec();
    let count = u16::try_from(record.len()).map_err(|_| "too many fields".to_owned())?;
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in record {
        let name_len =
            u16::try_from(name.len()).map_err(|_| format!("field name {name:?} too long"))?;
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        encode_value(&mut out, name, value)?;
    }
    Ok(out)
}

fn encode_value(out: &mut Vec<u8>, name: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::Null => out.push(0),
        Value::String(text) => {
            out.push(1);
            let len = u32::try_from(text.len()).map_err(|_| format!("field {name} too long"))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Value::Number(number) if number.is_i64() => {
            out.push(2);
            out.extend_from_slice(&number.as_i64().expect("checked").to_le_bytes());
        }
        Value::Bool(flag) => {
            out.push(3);
            out.push(u8::from(*flag));
        }
        other => return Err(format!("field {name}: {other} has no legacy encoding")),
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated {what} at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("two bytes"),
        ))
    }

    fn text(&mut self, count: usize, what: &str) -> Result<String, String> {
        let at = self.at;
        let bytes = self.take(count, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("invalid UTF-8 in {what} at byte {at}"))
    }
}

/// Decodes a legacy record into a JSON object (null fields become JSON null; absent fields
/// stay absent).
pub fn decode(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(3, "magic")? != MAGIC {
        return Err("not a legacy record (bad magic)".to_owned());
    }
    let count = reader.u16("field count")?;
    let mut record = Map::new();
    for _ in 0..count {
        let name_len = reader.u16("field name length")? as usize;
        let name = reader.text(name_len, "field name")?;
        let value = decode_value(&mut reader, &name)?;
        if record.insert(name.clone(), value).is_some() {
            return Err(format!("field {name} appears twice"));
        }
    }
    if reader.at != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the last field",
            bytes.len() - reader.at
        ));
    }
    Ok(record)
}

fn decode_value(reader: &mut Reader<'_>, name: &str) -> Result<Value, String> {
    let tag_at = reader.at;
    match reader.take(1, "tag")?[0] {
        0 => Ok(Value::Null),
        1 => {
            let len = u32::from_le_bytes(reader.take(4, "string length")?.try_into().expect("4"))
                as usize;
            Ok(Value::String(reader.text(len, name)?))
        }
        2 => Ok(Value::from(i64::from_le_bytes(
            reader.take(8, name)?.try_into().expect("8"),
        ))),
        3 => match reader.take(1, name)?[0] {
            0 => Ok(Value::Bool(false)),
            1 => Ok(Value::Bool(true)),
            other => Err(format!(
                "field {name}: boolean byte {other} at byte {}",
                reader.at - 1
            )),
        },
        other => Err(format!(
            "field {name}: unknown tag {other} at byte {tag_at}"
        )),
    }
}

/// The `index`-th record of the deterministic sample data used by the fixture generator
/// (`examples/legacy_fixture.rs`), the migration benchmark and tests: a name, a size, and a
/// note that is absent, null or text in turn.
pub fn sample_record(index: u64) -> Map<String, Value> {
    let mut record = Map::new();
    record.insert("name".into(), Value::String(format!("record {index}")));
    record.insert("size".into(), Value::from(index as i64 * 7 - 100));
    match index % 3 {
        0 => {}
        1 => {
            record.insert("note".into(), Value::Null);
        }
        _ => {
            record.insert("note".into(), Value::String(format!("note {index}")));
        }
    }
    record
}

/// The key of sample record `index`.
pub fn sample_key(index: u64) -> String {
    format!("record-{index:08}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    #[test]
    fn round_trip_keeps_null_distinct_from_absent() {
        let record = object(json!({"name": "a", "size": -7, "flag": true, "note": null}));
        let decoded = decode(&encode(&record).unwrap()).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(decoded.get("note"), Some(&Value::Null));
        assert_eq!(decoded.get("color"), None);
    }

    #[test]
    fn damaged_records_are_errors_naming_the_problem() {
        let bytes = encode(&object(json!({"name": "abc"}))).unwrap();
        assert!(decode(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        assert!(decode(b"XX1\0\0").unwrap_err().contains("bad magic"));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).unwrap_err().contains("trailing"));
        let mut bad_tag = bytes.clone();
        bad_tag[3 + 2 + 2 + 4] = 9;
        assert!(decode(&bad_tag).unwrap_err().contains("unknown tag 9"));
    }

    #[test]
    fn floats_and_nested_values_have_no_legacy_encoding() {
        assert!(encode(&object(json!({"x": 1.5}))).is_err());
        assert!(encode(&object(json!({"x": [1]}))).is_err());
    }
}
