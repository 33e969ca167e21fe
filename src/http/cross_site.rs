//! Publishing is closed to web pages from other sites.
//!
//! A page's `fetch(url, {method: 'POST', body: blob})` without a Content-Type is a CORS
//! *simple request*: the browser sends it without asking first, and only hides the answer. So
//! refusing the preflight is not enough; the upload itself must be refused before its body is
//! read. Browsers mark such a request: `Origin` names the page's origin and, in current
//! browsers, `Sec-Fetch-Site` says `cross-site` or `same-site`. Producers that are not web pages
//! (ffmpeg, curl, scripts, cameras) send neither header and are not affected.

use axum::http::{HeaderMap, header};

use crate::error::Error;

/// The header current browsers add to say where a request comes from relative to its target.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Refuses an upload that a web page on another origin sends, unless that origin is listed in
/// `allowed` (`--publish-origins`; `*` admits any page).
pub fn check_publisher(headers: &HeaderMap, allowed: &[String]) -> Result<(), Error> {
    if allowed.iter().any(|origin| origin == "*") {
        return Ok(());
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let listed = origin
        .as_deref()
        .is_some_and(|origin| allowed.iter().any(|allowed| allowed == origin));
    if listed {
        return Ok(());
    }
    let site = headers
        .get(SEC_FETCH_SITE)
        .map(|value| value.as_bytes().to_ascii_lowercase());
    match (site.as_deref(), origin) {
        // Not from a browser, or a browser's own navigation: nothing to refuse.
        (None | Some(b"none"), None) => Ok(()),
        // The page framecast itself serves may publish; a same-origin Origin is its own.
        (Some(b"same-origin"), _) => Ok(()),
        (None, Some(origin)) if is_same_origin(headers, &origin) => Ok(()),
        (_, origin) => Err(Error::CrossSitePublish(
            origin.unwrap_or_else(|| "a page on another site".to_owned()),
        )),
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn is_same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn producers_without_browser_headers_may_publish() {
        assert!(check_publisher(&headers(&[("host", "cam:8080")]), &[]).is_ok());
    }

    #[test]
    fn pages_on_other_sites_may_not_unless_listed() {
        let evil = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.test"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(check_publisher(&evil, &[]).is_err());
        assert!(check_publisher(&evil, &["http://evil.test".into()]).is_ok());
        assert!(check_publisher(&evil, &["*".into()]).is_ok());
        let sibling = headers(&[("sec-fetch-site", "same-site")]);
        assert!(check_publisher(&sibling, &[]).is_err());
        let old_browser = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.test")]);
        assert!(check_publisher(&old_browser, &[]).is_err());
        let sandboxed = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(check_publisher(&sandboxed, &[]).is_err());
    }

    #[test]
    fn the_servers_own_pages_may_publish() {
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check_publisher(&own, &[]).is_ok());
        let own_old_browser = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(check_publisher(&own_old_browser, &[]).is_ok());
    }
}
