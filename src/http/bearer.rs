//! Bearer tokens: the one way a request proves it may publish (`Authorization: Bearer TOKEN`,
//! as ffmpeg sends with `-headers`).
//!
//! Only ever compared, in constant time; never logged or repeated in an answer.

use axum::http::{HeaderMap, header};

use crate::error::Error;
use crate::secret::Secret;

/// Passes if no token is required, or if the request carries `token` as its bearer token.
pub fn check_publish_token(headers: &HeaderMap, token: Option<&Secret>) -> Result<(), Error> {
    let Some(token) = token else {
        return Ok(());
    };
    match bearer(headers) {
        None => Err(Error::Unauthorized(
            "publishing needs a token: send Authorization: Bearer <publish token>",
        )),
        Some(given) if token.matches(given) => Ok(()),
        Some(_) => Err(Error::Unauthorized("the publish token is not valid")),
    }
}

/// The token of an `Authorization: Bearer …` header (scheme in any case), if there is one.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn a_token_is_needed_only_when_one_is_set() {
        let token = Secret::new("abc123").unwrap();
        assert!(check_publish_token(&HeaderMap::new(), None).is_ok());
        assert!(check_publish_token(&HeaderMap::new(), Some(&token)).is_err());
        assert!(check_publish_token(&with_authorization("Bearer abc123"), Some(&token)).is_ok());
        assert!(check_publish_token(&with_authorization("bearer  abc123 "), Some(&token)).is_ok());
        assert!(check_publish_token(&with_authorization("Bearer abc12"), Some(&token)).is_err());
        assert!(check_publish_token(&with_authorization("Basic abc123"), Some(&token)).is_err());
        assert!(check_publish_token(&with_authorization("Bearer"), Some(&token)).is_err());
    }
}
