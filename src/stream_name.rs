//! `StreamName`: the validated name of a stream, safe to put in JSON, logs and URLs as it is.

use std::fmt;

/// The stream used when a request names none.
pub const DEFAULT_STREAM: &str = "default";
/// Longest stream name; long enough for descriptive names, short enough to log.
pub const MAX_STREAM_NAME_LEN: usize = 64;

/// A name that is not a valid stream name (cut to 80 characters, so it can be shown).
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid stream name {0:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidStreamName(String);

/// A stream name made of 1 to 64 of `A-Z a-z 0-9 _ -`, so it never needs escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    /// Checks `name`; `None` means the default stream.
    pub fn parse(name: Option<&str>) -> Result<StreamName, InvalidStreamName> {
        let name = name.unwrap_or(DEFAULT_STREAM);
        let valid = (1..=MAX_STREAM_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(StreamName(name.to_owned()))
        } else {
            Err(InvalidStreamName(name.chars().take(80).collect()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_and_defaults() {
        assert_eq!(StreamName::parse(None).unwrap().as_str(), "default");
        assert!(StreamName::parse(Some("cam_1-Front")).is_ok());
        assert!(StreamName::parse(Some(&"a".repeat(64))).is_ok());
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "a b",
            "../x",
            "%2e",
            "x/y",
            "é",
            "a\nb",
            &"a".repeat(65),
        ] {
            assert!(StreamName::parse(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
