//! Editing a base image config into the function's config, as raw JSON.
//!
//! Every field of the base survives, including ones oci-spec does not model. Only `Cmd`, `Env`,
//! `Labels`, `created`, `rootfs.diff_ids` and `history` change, and `variant` is added when the
//! base has none; `Entrypoint` and `WorkingDir`
//! stay as the base set them (`/lambda-entrypoint.sh` and `/var/task` on provided bases).

use oci_spec::image::ImageConfiguration;
use serde_json::{Map, Value, json};

use super::json::to_canonical_vec;
use crate::digest::Sha256Digest;

/// A `KEY=VALUE` pair from `--env` or `--label`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl std::str::FromStr for KeyValue {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() && !key.chars().any(char::is_whitespace) => {
                Ok(Self {
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
            }
            _ => Err(format!(
                "`{text}` is not KEY=VALUE with a non-empty KEY without spaces"
            )),
        }
    }
}

/// What the function image changes in the base config.
pub struct ConfigChanges<'a> {
    /// The platform variant (`v8` for arm64), written as the config's `variant` when the base
    /// config has none, so the config says what the index descriptor says.
    pub variant: Option<&'a str>,
    pub cmd: &'a [String],
    pub env: &'a [KeyValue],
    pub labels: &'a [KeyValue],
    /// RFC 3339 timestamp for `created` and the history entry.
    pub created: &'a str,
    pub diff_id: &'a Sha256Digest,
    pub created_by: &'a str,
}

/// The parts of a base config lambda-image needs to read.
#[derive(Clone, Debug)]
pub struct BaseConfigFacts {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub diff_id_count: usize,
}

/// Checks a base config is a well-formed image config and returns what the build needs from it.
pub fn read_base_config(raw: &[u8]) -> Result<BaseConfigFacts, String> {
    let config = serde_json::from_slice::<ImageConfiguration>(raw)
        .map_err(|error| format!("not a valid image config: {error}"))?;
    let value: Value =
        serde_json::from_slice(raw).map_err(|error| format!("not valid JSON: {error}"))?;
    Ok(BaseConfigFacts {
        architecture: config.architecture().to_string(),
        os: config.os().to_string(),
        variant: value
            .get("variant")
            .and_then(Value::as_str)
            .map(str::to_owned),
        diff_id_count: config.rootfs().diff_ids().len(),
    })
}

/// Applies `changes` to the raw base config and returns the new config as canonical JSON.
pub fn edit_config(base_raw: &[u8], changes: &ConfigChanges) -> Result<Vec<u8>, String> {
    let mut root: Value =
        serde_json::from_slice(base_raw).map_err(|error| format!("not valid JSON: {error}"))?;
    let root_object = root
        .as_object_mut()
        .ok_or("the config is not a JSON object")?;

    root_object.insert("created".into(), json!(changes.created));
    if let Some(variant) = changes.variant {
        root_object
            .entry("variant")
            .or_insert_with(|| json!(variant));
    }

    let rootfs = object_field(root_object, "rootfs")?;
    rootfs.entry("type").or_insert_with(|| json!("layers"));
    array_field(rootfs, "diff_ids")?.push(json!(changes.diff_id.to_string()));

    array_field(root_object, "history")?.push(json!({
        "created": changes.created,
        "created_by": changes.created_by,
        "comment": "lambda-image",
    }));

    let runtime = object_field(root_object, "config")?;
    runtime.insert("Cmd".into(), json!(changes.cmd));
    merge_env(array_field(runtime, "Env")?, changes.env);
    let labels = object_field(runtime, "Labels")?;
    for label in changes.labels {
        labels.insert(label.key.clone(), json!(label.value));
    }
    if labels.is_empty() {
        runtime.remove("Labels");
    }
    Ok(to_canonical_vec(&root))
}

/// Sets each variable in place when the base has it, else appends it, keeping the base's order.
fn merge_env(env: &mut Vec<Value>, changes: &[KeyValue]) {
    for change in changes {
        let entry = json!(format!("{}={}", change.key, change.value));
        let existing = env.iter_mut().find(|item| {
            item.as_str()
                .and_then(|text| text.split_once('='))
                .is_some_and(|(key, _)| key == change.key)
        });
        match existing {
            Some(item) => *item = entry,
            None => env.push(entry),
        }
    }
}

/// The object under `key`, created when absent or null.
fn object_field<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let slot = parent.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| format!("`{key}` in the config is not an object"))
}

/// The array under `key`, created when absent or null.
fn array_field<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Vec<Value>, String> {
    let slot = parent.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or_else(|| format!("`{key}` in the config is not an array"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_unknown_fields_and_merge_env() {
        let base = br#"{"architecture":"amd64","os":"linux","x-unknown":{"kept":true},
            "config":{"Env":["PATH=/bin","LANG=C"],"Entrypoint":["/lambda-entrypoint.sh"],"WorkingDir":"/var/task"},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"base"}]}"#;
        let diff_id = Sha256Digest::of(b"layer");
        let changes = ConfigChanges {
            variant: Some("v8"),
            cmd: &["handler".to_owned()],
            env: &[
                "LANG=en_US.UTF-8".parse().unwrap(),
                "MODE=prod".parse().unwrap(),
            ],
            labels: &["team=payments".parse().unwrap()],
            created: "1970-01-01T00:00:00Z",
            diff_id: &diff_id,
            created_by: "test",
        };
        let edited: Value = serde_json::from_slice(&edit_config(base, &changes).unwrap()).unwrap();
        assert_eq!(edited["x-unknown"]["kept"], json!(true));
        assert_eq!(
            edited["config"]["Env"],
            json!(["PATH=/bin", "LANG=en_US.UTF-8", "MODE=prod"])
        );
        assert_eq!(
            edited["config"]["Entrypoint"],
            json!(["/lambda-entrypoint.sh"])
        );
        assert_eq!(edited["config"]["Cmd"], json!(["handler"]));
        assert_eq!(edited["config"]["Labels"]["team"], json!("payments"));
        assert_eq!(edited["rootfs"]["diff_ids"][1], json!(diff_id.to_string()));
        assert_eq!(edited["history"].as_array().unwrap().len(), 2);
        assert_eq!(edited["created"], json!("1970-01-01T00:00:00Z"));
        assert_eq!(edited["variant"], json!("v8"));
    }

    #[test]
    fn key_values_need_a_key() {
        assert!("=x".parse::<KeyValue>().is_err());
        assert!("novalue".parse::<KeyValue>().is_err());
        assert_eq!("A=b=c".parse::<KeyValue>().unwrap().value, "b=c");
        assert_eq!("EMPTY=".parse::<KeyValue>().unwrap().value, "");
    }
}
