//! Values drawn over the whole value space of the record encoding, edge values weighted.
//!
//! A draw's value 0 is the simple value the workload used before (`record 3`, `15`), so the
//! shrinker walks every value back to it; values 1 to `n` pick the `n` edge values of the
//! kind; larger values are the simple one again. Half of the draws land on an edge: enough
//! that a short sweep meets every edge kind (a test checks it), few enough that the simple
//! values still dominate the workload.

use serde_json::Value;

/// Edge strings: empty, multi-byte UTF-8 of 2, 3 and 4 bytes a char, an embedded NUL,
/// quotes and backslashes, a line break, and one longer than 255 bytes.
pub const EDGE_STRINGS: &[(&str, &str)] = &[
    ("empty", ""),
    ("two-byte", "café crème"),
    ("three-byte", "日本語のテキスト"),
    ("four-byte", "crab 🦀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
    ("nul", "before\u{0}after"),
    ("escapes", "\"quoted\" \\ back\\slash"),
    ("line-break", "first line\nsecond line\r\n"),
    ("long", LONG),
];

const LONG: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789";

/// Edge integers: zero, plus and minus one, the i64 extremes, either side of 2^53 (the
/// largest integer a double holds exactly) and of 2^32.
pub const EDGE_INTEGERS: &[(&str, i64)] = &[
    ("zero", 0),
    ("minus-one", -1),
    ("one", 1),
    ("i64-min", i64::MIN),
    ("i64-max", i64::MAX),
    ("two-pow-53-plus-one", (1 << 53) + 1),
    ("minus-two-pow-53-minus-one", -(1 << 53) - 1),
    ("two-pow-32", 1 << 32),
];

/// A string for `site`: `simple`, or one of [`EDGE_STRINGS`].
pub fn string(draw: &mut impl FnMut(String, u64) -> u64, site: String, simple: String) -> Value {
    let edges = EDGE_STRINGS.len() as u64;
    match draw(site, 2 * edges) {
        0 => Value::String(simple),
        v if v <= edges => Value::String(EDGE_STRINGS[v as usize - 1].1.to_owned()),
        _ => Value::String(simple),
    }
}

/// The string a [`string`]-style draw `value` stands for: one of [`EDGE_STRINGS`] for 1 to
/// their number, `simple` otherwise (for values drawn in a plan and turned into text later).
pub fn string_of(value: u64, simple: impl FnOnce() -> String) -> String {
    match value {
        v if (1..=EDGE_STRINGS.len() as u64).contains(&v) => {
            EDGE_STRINGS[v as usize - 1].1.to_owned()
        }
        _ => simple(),
    }
}

/// The bound of a string draw: half its values are edges.
pub const STRING_DRAW_BOUND: u64 = 2 * EDGE_STRINGS.len() as u64;

/// An integer for `site`: `simple`, or one of [`EDGE_INTEGERS`].
pub fn integer(draw: &mut impl FnMut(String, u64) -> u64, site: String, simple: i64) -> Value {
    let edges = EDGE_INTEGERS.len() as u64;
    match draw(site, 2 * edges) {
        0 => Value::from(simple),
        v if v <= edges => Value::from(EDGE_INTEGERS[v as usize - 1].1),
        _ => Value::from(simple),
    }
}

/// The edge kind `value` is, if it is one (for the test that every kind appears).
pub fn edge_kind(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(text) => EDGE_STRINGS
            .iter()
            .find(|(_, edge)| edge == text)
            .map(|(kind, _)| *kind),
        Value::Number(number) => EDGE_INTEGERS
            .iter()
            .find(|(_, edge)| number.as_i64() == Some(*edge))
            .map(|(kind, _)| *kind),
        Value::Bool(true) => Some("true"),
        Value::Bool(false) => Some("false"),
        Value::Null => Some("null"),
        _ => None,
    }
}
