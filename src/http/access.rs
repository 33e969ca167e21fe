//! Access control: which requests may watch a stream, list streams, or publish.
//!
//! Two kinds of credential, both sent as `Authorization: Bearer …`:
//!
//! - the **publish token** (`--publish-token`), a shared secret for producers;
//! - **access tokens** (JWT, `--jwt-secret` / `--jwt-public-key`) that the operator's own
//!   backend mints for its users, naming the streams each may watch and publish (see `jwt`).
//!   Where a header cannot be set (`EventSource`, `<img>`, a link) the token may come as
//!   `?access_token=` instead.
//!
//! With no JWT option set, reading is open, as on a laptop. With one set, every route that
//! reveals a stream needs a token that allows it: 401 when there is no valid token, 403 when
//! a valid one does not cover the stream. `/healthz` stays open. Publishing needs the publish
//! token or an access token whose `publish` patterns match, whenever either is configured.
//! `/metrics` needs the metrics token (`--metrics-token`) or an access token that may watch
//! every stream, whenever either is configured.
//!
//! Tokens are only ever verified or compared in constant time; no answer or log line repeats
//! one.

use axum::http::{HeaderMap, header};

use super::AppState;
use crate::error::Error;
use crate::jwt::Grant;
use crate::secret::Secret;
use crate::stream_name::StreamName;

/// What a request may read.
#[derive(Debug, Clone)]
pub enum Reader {
    /// No access tokens are configured: everything.
    Anyone,
    /// What its verified token grants.
    Holder(Grant),
}

impl Reader {
    /// Whether this reader may watch the stream named `stream`.
    pub fn may_watch(&self, stream: &str) -> bool {
        match self {
            Reader::Anyone => true,
            Reader::Holder(grant) => grant.may_subscribe(stream),
        }
    }

    /// Passes if this reader may watch every one of `streams`, else 403 naming those it may not.
    pub fn check_watch_all(&self, streams: &[StreamName]) -> Result<(), Error> {
        let denied: Vec<String> = streams
            .iter()
            .filter(|stream| !self.may_watch(stream.as_str()))
            .map(|stream| format!("'{stream}'"))
            .collect();
        match denied.len() {
            0 => Ok(()),
            1 => Err(Error::Forbidden(format!(
                "the access token does not allow watching stream {}",
                denied[0]
            ))),
            _ => Err(Error::Forbidden(format!(
                "the access token does not allow watching streams {}",
                denied.join(", ")
            ))),
        }
    }

    /// When this reader's right ends, if it does.
    pub fn expires_at(&self) -> Option<std::time::SystemTime> {
        match self {
            Reader::Anyone => None,
            Reader::Holder(grant) => Some(grant.expires_at),
        }
    }
}

/// Who is reading: anyone if no JWT option is set, else the holder of a valid access token
/// from the `Authorization` header or `query_token` (`?access_token=`), else 401.
pub fn reader(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Reader, Error> {
    let Some(verifier) = &state.verifier else {
        return Ok(Reader::Anyone);
    };
    let token = presented(headers, query_token).ok_or(Error::Unauthorized(
        "an access token is needed: send Authorization: Bearer <token> or ?access_token=<token>"
            .into(),
    ))?;
    let grant = verifier
        .verify(token)
        .map_err(|err| Error::Unauthorized(err.to_string()))?;
    Ok(Reader::Holder(grant))
}

/// Passes if the request may publish into `stream`: nothing is configured, or it carries the
/// publish token, or an access token whose `publish` patterns cover `stream`.
pub fn check_publisher(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
    stream: &StreamName,
) -> Result<(), Error> {
    let gate = Gate {
        secret: state.config.publish_token.as_ref(),
        needs: "publishing needs a token: send Authorization: Bearer <token>",
        invalid: "the publish token is not valid",
    };
    gate.check(
        state,
        presented(headers, query_token),
        |grant| grant.may_publish(stream.as_str()),
        || format!("the access token does not allow publishing to stream '{stream}'"),
    )
}

/// Passes if the request may read `GET /metrics`, which names every stream: nothing is
/// configured, or it carries the metrics token, or an access token that may watch every
/// stream. Only as a bearer header: a token in a scrape URL would end up in logs.
pub fn check_metrics_reader(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let gate = Gate {
        secret: state.config.metrics_token.as_ref(),
        needs: "metrics need a token: send Authorization: Bearer <token>",
        invalid: "the metrics token is not valid",
    };
    gate.check(
        state,
        bearer(headers).filter(|token| !token.is_empty()),
        Grant::may_subscribe_all,
        || {
            "reading metrics needs an access token that may watch every stream (subscribe: [\"*\"])"
                .into()
        },
    )
}

/// A route that takes a shared secret of its own (`--publish-token`, `--metrics-token`) or an
/// access token that allows it, and is open when neither kind is configured.
struct Gate<'a> {
    secret: Option<&'a Secret>,
    /// The 401 message when no token came.
    needs: &'static str,
    /// The 401 message when the token is neither the secret nor a valid access token, and
    /// does not look like one.
    invalid: &'static str,
}

impl Gate<'_> {
    /// Passes `token` if it is the secret, or an access token that `allows`; a valid access
    /// token that does not is 403 with `denied`'s message.
    fn check(
        &self,
        state: &AppState,
        token: Option<&str>,
        allows: impl FnOnce(&Grant) -> bool,
        denied: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        if self.secret.is_none() && state.verifier.is_none() {
            return Ok(());
        }
        let Some(token) = token else {
            return Err(Error::Unauthorized(self.needs.into()));
        };
        if self
            .secret
            .is_some_and(|secret| secret.matches(token.as_bytes()))
        {
            return Ok(());
        }
        let Some(verifier) = &state.verifier else {
            return Err(Error::Unauthorized(self.invalid.into()));
        };
        match verifier.verify(token) {
            Ok(grant) if allows(&grant) => Ok(()),
            Ok(_) => Err(Error::Forbidden(denied())),
            // A token that is neither: with a secret configured it may have been meant as
            // one, so say so rather than explain JWT.
            Err(_) if self.secret.is_some() && !looks_like_jwt(token) => {
                Err(Error::Unauthorized(self.invalid.into()))
            }
            Err(err) => Err(Error::Unauthorized(err.to_string())),
        }
    }
}

/// The token a request presents: its bearer token, else `query_token`.
fn presented<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    bearer(headers)
        .or(query_token)
        .filter(|token| !token.is_empty())
}

/// The token of an `Authorization: Bearer …` header (scheme in any case), if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| value[7..].trim())
}

/// Whether `token` has a JWT's shape: three dot-separated parts.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
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
    fn a_bearer_token_is_read_in_any_case_and_before_the_query() {
        assert_eq!(bearer(&with_authorization("Bearer abc123")), Some("abc123"));
        assert_eq!(
            bearer(&with_authorization("bearer  abc123 ")),
            Some("abc123")
        );
        assert_eq!(bearer(&with_authorization("Basic abc123")), None);
        assert_eq!(bearer(&with_authorization("Bearer")), None);
        let headers = with_authorization("Bearer header");
        assert_eq!(presented(&headers, Some("query")), Some("header"));
        assert_eq!(presented(&HeaderMap::new(), Some("query")), Some("query"));
        assert_eq!(presented(&HeaderMap::new(), Some("")), None);
    }
}
