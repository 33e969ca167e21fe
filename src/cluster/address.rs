//! `--nats`: the NATS servers to join, with their credentials kept apart from what is logged.
//!
//! NATS URLs may carry a user and password (`nats://user:pass@host:4222`) or a token
//! (`nats://token@host:4222`). They are taken out of the addresses and handed to the client
//! as credentials, so that logs, errors and `Debug` output show only `nats://host:4222`.

use std::fmt;

use async_nats::ConnectOptions;

/// Parses `--nats`: one or more comma-separated URLs (`nats://`, `tls://`, or `host:port`),
/// all with the same credentials if any. Errors never repeat a URL, which may hold a password.
pub fn parse_servers(text: &str) -> Result<NatsServers, String> {
    let mut servers = NatsServers {
        addresses: Vec::new(),
        auth: None,
    };
    for (index, item) in text.split(',').map(str::trim).enumerate() {
        let which = index + 1;
        if item.is_empty() {
            return Err(format!("NATS URL {which} is empty"));
        }
        let with_scheme = if item.contains("://") {
            item.to_owned()
        } else {
            format!("nats://{item}")
        };
        let mut url = reqwest::Url::parse(&with_scheme)
            .map_err(|err| format!("NATS URL {which} is not a URL: {err}"))?;
        if !matches!(url.scheme(), "nats" | "tls") {
            return Err(format!(
                "NATS URL {which} has the scheme {:?}; use nats:// or tls://",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("NATS URL {which} names no host"));
        }
        let auth = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) => Some(Auth::UserPassword(decode(user), decode(password))),
            (token, None) => Some(Auth::Token(decode(token))),
        };
        if auth.is_some() {
            if servers.auth.is_some() && servers.auth != auth {
                return Err("the NATS URLs carry different credentials; use one set".into());
            }
            servers.auth = auth;
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        servers.addresses.push(url.to_string());
    }
    Ok(servers)
}

/// The NATS servers of `--nats`, and the credentials their URLs carried.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsServers {
    /// URLs without credentials.
    addresses: Vec<String>,
    auth: Option<Auth>,
}

/// Credentials from a NATS URL.
#[derive(Clone, PartialEq, Eq)]
enum Auth {
    UserPassword(String, String),
    Token(String),
}

impl NatsServers {
    /// The servers' URLs, without credentials.
    pub fn addresses(&self) -> Vec<async_nats::ServerAddr> {
        self.addresses
            .iter()
            .filter_map(|address| address.parse().ok())
            .collect()
    }

    /// `options` with the credentials the URLs carried.
    pub fn authenticate(&self, options: ConnectOptions) -> ConnectOptions {
        match &self.auth {
            Some(Auth::UserPassword(user, password)) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Some(Auth::Token(token)) => options.token(token.clone()),
            None => options,
        }
    }
}

/// The URLs as logs show them: without credentials.
impl fmt::Display for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addresses.join(","))
    }
}

impl fmt::Debug for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match self.auth {
            Some(Auth::UserPassword(..)) => "user and password",
            Some(Auth::Token(_)) => "token",
            None => "none",
        };
        f.debug_struct("NatsServers")
            .field("addresses", &self.addresses)
            .field("auth", &auth)
            .finish()
    }
}

/// URL user and password parts are percent-encoded; the server wants them as typed.
fn decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_addresses() {
        let servers =
            parse_servers("nats://alice:s3cr%40t@10.0.0.1:4222, tls://alice:s3cr%40t@n2").unwrap();
        assert_eq!(servers.to_string(), "nats://10.0.0.1:4222,tls://n2");
        assert!(servers.auth == Some(Auth::UserPassword("alice".into(), "s3cr@t".into())));
        let shown = format!("{servers:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    }

    #[test]
    fn a_lone_user_part_is_a_token_and_a_bare_address_is_nats() {
        let servers = parse_servers("t0ken+x@127.0.0.1:4222").unwrap();
        assert_eq!(servers.to_string(), "nats://127.0.0.1:4222");
        assert!(servers.auth == Some(Auth::Token("t0ken+x".into())));
        assert_eq!(servers.addresses().len(), 1);
    }

    #[test]
    fn mistakes_are_named_without_repeating_the_url() {
        for (text, says) in [
            ("http://u:hunter2@host", "scheme"),
            (
                "nats://a:hunter2@h1,nats://b:hunter2@h2",
                "different credentials",
            ),
            ("nats://h1,,nats://h2", "URL 2 is empty"),
        ] {
            let err = parse_servers(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
            assert!(!err.contains("hunter2"), "{text}: {err}");
        }
    }
}
