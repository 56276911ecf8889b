//! Canonical JSON: object keys sorted at every level, no insignificant whitespace.
//!
//! oci-spec keeps annotations in a `HashMap`, whose order changes from run to run; serializing
//! through here makes every document we write byte-for-byte reproducible.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serializes `value` canonically.
pub fn to_canonical_vec<T: Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("image documents always serialize to JSON");
    serde_json::to_vec(&sorted(value)).expect("a JSON value always serializes")
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sorted(value)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": null}});
        assert_eq!(
            String::from_utf8(to_canonical_vec(&value)).unwrap(),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
