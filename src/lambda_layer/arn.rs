//! A Lambda layer version's ARN, `arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION`, as
//! `build --layer` takes it: parsed and checked before anything is fetched, so a typo is a usage
//! error (exit 2) that says what is wrong, never an AWS error. The grammar is Lambda's
//! (`LayerVersionArn` in the API reference): partition `aws`, `aws-cn`, `aws-us-gov` (any
//! `aws-*`), a 12-digit account, a name of letters, digits, `-` and `_` (at most 140), and a
//! version number from 1. Not here: fetching (`super::fetch`).

use std::fmt;

/// A parsed layer version ARN. Display gives it back as written (it was checked, so that is
/// also its canonical form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerArn {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: String,
    /// The region that holds the layer, where `GetLayerVersionByArn` is asked.
    pub region: String,
    /// The 12-digit account that published it.
    pub account: String,
    /// The layer's name.
    pub name: String,
    /// The layer version (from 1).
    pub version: u64,
}

impl fmt::Display for LayerArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:layer:{}:{}",
            self.partition, self.region, self.account, self.name, self.version
        )
    }
}

/// What an ARN should look like, for messages.
const EXAMPLE: &str = "arn:aws:lambda:us-east-1:123456789012:layer:NAME:3";

impl LayerArn {
    /// Parses `text` (which starts with `arn:`). Errors (the message for clap, usage): not a
    /// Lambda layer ARN, a field out of Lambda's grammar, or no version (a layer, not a layer
    /// version: Lambda attaches layer versions).
    pub fn parse(text: &str) -> Result<LayerArn, String> {
        let fields: Vec<&str> = text.split(':').collect();
        let malformed = |what: &str| {
            format!("`{text}` is not a Lambda layer version ARN ({what}); expected {EXAMPLE}")
        };
        if fields.len() < 7 || fields[0] != "arn" || fields[2] != "lambda" || fields[5] != "layer" {
            return Err(malformed(
                "arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION",
            ));
        }
        let (partition, region, account, name) = (fields[1], fields[3], fields[4], fields[6]);
        if partition != "aws"
            && !partition
                .strip_prefix("aws-")
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(is_lower_or_digit))
        {
            return Err(malformed(&format!(
                "partition `{partition}`: aws, aws-cn or aws-us-gov"
            )));
        }
        if region.is_empty() || !region.bytes().all(is_lower_or_digit) {
            return Err(malformed(&format!("region `{region}`: e.g. us-east-1")));
        }
        if account.len() != 12 || !account.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(malformed(&format!("account `{account}`: 12 digits")));
        }
        if name.is_empty()
            || name.len() > 140
            || !name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(malformed(&format!(
                "layer name `{name}`: letters, digits, - and _"
            )));
        }
        let version = match fields.get(7) {
            None => {
                return Err(format!(
                    "`{text}` names a layer, not a layer version: Lambda attaches layer \
                     versions, so add the version, e.g. {text}:1 (`aws lambda \
                     list-layer-versions --layer-name {text}` lists them)"
                ));
            }
            Some(version) => version,
        };
        if fields.len() > 8 {
            return Err(malformed("text after the version"));
        }
        let version = Some(version)
            .filter(|version| !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|version| version.parse::<u64>().ok())
            .filter(|&version| version >= 1)
            .ok_or_else(|| malformed(&format!("version `{version}`: a number from 1")))?;
        Ok(LayerArn {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            version,
        })
    }
}

fn is_lower_or_digit(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_version_arns_of_every_partition_parse() {
        let arn =
            LayerArn::parse("arn:aws:lambda:eu-west-1:464622532012:layer:Datadog-Extension-ARM:65")
                .unwrap();
        assert_eq!(arn.partition, "aws");
        assert_eq!(arn.region, "eu-west-1");
        assert_eq!(arn.account, "464622532012");
        assert_eq!(arn.name, "Datadog-Extension-ARM");
        assert_eq!(arn.version, 65);
        assert_eq!(
            arn.to_string(),
            "arn:aws:lambda:eu-west-1:464622532012:layer:Datadog-Extension-ARM:65"
        );
        for text in [
            "arn:aws-cn:lambda:cn-north-1:123456789012:layer:x_y:1",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:layer:x:12",
        ] {
            assert_eq!(LayerArn::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_layer_without_its_version_is_refused_saying_why() {
        let error =
            LayerArn::parse("arn:aws:lambda:us-east-1:123456789012:layer:agent").unwrap_err();
        assert!(error.contains("not a layer version"), "{error}");
        assert!(error.contains("layer:agent:1"), "{error}");
    }

    #[test]
    fn arns_too_short_to_name_a_layer_are_refused() {
        for short in [
            "arn:aws:lambda:us-east-1:123456789012",
            "arn:aws:lambda",
            "arn:",
        ] {
            let error = LayerArn::parse(short).unwrap_err();
            assert!(error.contains("not a Lambda layer version ARN"), "{error}");
        }
    }

    #[test]
    fn malformed_arns_name_the_field() {
        for (text, field) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f:1",
                "arn:PARTITION",
            ),
            (
                "arn:aws:s3:us-east-1:123456789012:layer:x:1",
                "arn:PARTITION",
            ),
            (
                "arn:gcp:lambda:us-east-1:123456789012:layer:x:1",
                "partition",
            ),
            ("arn:aws:lambda:US-EAST-1:123456789012:layer:x:1", "region"),
            ("arn:aws:lambda::123456789012:layer:x:1", "region"),
            ("arn:aws:lambda:us-east-1:1234:layer:x:1", "account"),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer:a/b:1",
                "layer name",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer::1",
                "layer name",
            ),
            ("arn:aws:lambda:us-east-1:123456789012:layer:x:0", "version"),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer:x:latest",
                "version",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer:x:+3",
                "version",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:layer:x:3:4",
                "after the version",
            ),
        ] {
            let error = LayerArn::parse(text).unwrap_err();
            assert!(error.contains(field), "{text}: {error}");
            assert!(
                error.contains("expected arn:aws:lambda:"),
                "{text}: {error}"
            );
        }
    }
}
