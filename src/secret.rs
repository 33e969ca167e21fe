//! `Secret`: a token the server checks requests against, never shown.
//!
//! Its `Debug` prints no part of it, so a configuration dumped into a log stays safe, and it is
//! compared in constant time, so an attacker cannot learn it byte by byte from response times.

use std::fmt;

use subtle::ConstantTimeEq;

/// A shared secret, such as the publish token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`, or fails if it is empty (an empty token would admit anyone).
    pub fn new(text: &str) -> Result<Secret, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("a token may not be empty".into());
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token must be printable ASCII without spaces".into());
        }
        Ok(Secret(text.to_owned()))
    }

    /// Whether `candidate` is this secret, in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }

    /// The secret's bytes, only for keying a MAC (the JWT secret keys HS256): never show, log or
    /// compare them; [`Secret::matches`] is the comparison.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_itself_and_never_shows() {
        let secret = Secret::new("s3cret-token\n").unwrap();
        assert!(secret.matches(b"s3cret-token"));
        assert!(!secret.matches(b"s3cret-tokeN"));
        assert!(!secret.matches(b"s3cret"));
        assert!(!secret.matches(b""));
        assert!(!format!("{secret:?}").contains("s3cret"));
        assert!(Secret::new("  ").is_err());
        assert!(Secret::new("two words").is_err());
    }
}
