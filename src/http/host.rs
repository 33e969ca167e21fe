//! DNS rebinding: a server on a loopback address answers only requests addressed to it.
//!
//! A web page on `http://evil.example` can make its own name resolve to 127.0.0.1 and then read
//! from a framecast running on the visitor's machine as if it were same-origin. The browser
//! still sends `Host: evil.example`, so while every listening address is a loopback one, a
//! request whose `Host` is not a loopback name or address (or one listed in `--allowed-hosts`)
//! is refused with 403. Bound to other addresses, framecast is meant to be reached by other
//! names, and the check is off.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::error::Error;

/// Refuses requests whose `Host` (or HTTP/2 authority) names another machine, when the server
/// listens on loopback only. A request without either (HTTP/1.0) passes: browsers always send
/// one.
pub async fn check_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, Error> {
    if state.loopback_only {
        // HTTP/2 names the host in the `:authority` pseudo-header, which arrives as the URI's.
        let host = request
            .headers()
            .get(header::HOST)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .map(|authority| authority.to_string())
            });
        if let Some(host) = host
            && !is_allowed(&host, &state.config.allowed_hosts)
        {
            return Err(Error::HostNotAllowed(host.chars().take(100).collect()));
        }
    }
    Ok(next.run(request).await)
}

/// Whether `host` (a `Host` header: name or address, maybe a port) is a loopback name or
/// address, or one of `allowed` (names compared without case and without the port).
fn is_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.');
    if name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    if name
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        return true;
    }
    allowed
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_listed_hosts_pass_others_do_not() {
        for host in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "127.1.2.3:80",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:5173",
            "[::1]:8080",
            "[::1]",
            "localhost.",
        ] {
            assert!(is_allowed(host, &[]), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.5:8080",
            "[::2]:80",
            "x",
            "",
        ] {
            assert!(!is_allowed(host, &[]), "{host}");
        }
        let allowed = ["camera-box.lan".to_owned()];
        assert!(is_allowed("Camera-Box.lan:8080", &allowed));
        assert!(!is_allowed("other.lan:8080", &allowed));
    }
}
