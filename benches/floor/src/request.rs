//! The two requests the floor answers, read from the start of a connection's input:
//! `GET /events?stream=NAME` and `POST /frames?stream=NAME` with a `Content-Length` body.
//! Anything else is refused with a status. Pure code, no I/O.

/// Longest request head read; past it the request is refused.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most request headers read.
const MAX_HEADERS: usize = 32;
/// The stream a request names when it names none, as in framecast.
const DEFAULT_STREAM: &str = "default";
/// Longest stream name, as in framecast.
const MAX_STREAM_NAME_LEN: usize = 64;

/// A request the floor serves.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET /events`: subscribe to `stream`.
    Subscribe {
        /// Stream name, validated.
        stream: String,
    },
    /// `POST /frames`: publish the body (one JPEG) to `stream`.
    Publish {
        /// Stream name, validated.
        stream: String,
        /// `Content-Length` of the body that follows the head.
        body_len: usize,
    },
}

/// What the start of a connection's input holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not the whole head yet.
    Partial,
    /// A request, and the length of its head (its body, if any, follows).
    Complete(Request, usize),
    /// A request the floor does not serve: answer with this status line and reason, then close.
    Refused(&'static str, &'static str),
}

/// Reads the request head at the start of `input`.
pub fn parse(input: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() <= MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refused(
                "431 Request Header Fields Too Large",
                "request head too big",
            );
        }
        Err(_) => return Parsed::Refused("400 Bad Request", "malformed request"),
    };
    let path = request.path.unwrap_or_default();
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let Some(stream) = stream_name(query) else {
        return Parsed::Refused("400 Bad Request", "bad stream name");
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value)
    };
    match (request.method.unwrap_or_default(), route) {
        ("GET", "/events") => Parsed::Complete(Request::Subscribe { stream }, head_len),
        ("POST", "/frames") => {
            if header("transfer-encoding").is_some() {
                return Parsed::Refused("411 Length Required", "send the JPEG with a length");
            }
            let Some(length) = header("content-length") else {
                return Parsed::Refused("411 Length Required", "send the JPEG with a length");
            };
            match std::str::from_utf8(length)
                .ok()
                .and_then(|l| l.trim().parse().ok())
            {
                Some(body_len) => Parsed::Complete(Request::Publish { stream, body_len }, head_len),
                None => Parsed::Refused("400 Bad Request", "bad Content-Length"),
            }
        }
        _ => Parsed::Refused(
            "404 Not Found",
            "the floor serves GET /events and POST /frames",
        ),
    }
}

/// The `stream` parameter of a query string, checked as framecast checks it (1 to 64 of
/// `A-Z a-z 0-9 _ -`, so it never needs escaping); `None` if it is not a valid name.
fn stream_name(query: &str) -> Option<String> {
    let name = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("stream="))
        .unwrap_or(DEFAULT_STREAM);
    let valid = (1..=MAX_STREAM_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_generators_requests_are_understood() {
        let get = b"GET /events?stream=bench-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
        assert_eq!(
            parse(get),
            Parsed::Complete(
                Request::Subscribe {
                    stream: "bench-1".into()
                },
                get.len()
            )
        );
        let post = b"POST /frames?stream=bench-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Content-Type: image/jpeg\r\nContent-Length: 39000\r\n\r\n\xff\xd8";
        assert_eq!(
            parse(post),
            Parsed::Complete(
                Request::Publish {
                    stream: "bench-1".into(),
                    body_len: 39000
                },
                post.len() - 2
            )
        );
        assert_eq!(parse(&post[..20]), Parsed::Partial);
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        let refused = |input: &[u8]| matches!(parse(input), Parsed::Refused(..));
        assert!(refused(b"GET /streams HTTP/1.1\r\n\r\n"));
        assert!(refused(b"GET /events?stream=../x HTTP/1.1\r\n\r\n"));
        assert!(refused(
            b"POST /frames HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(refused(b"POST /frames HTTP/1.1\r\n\r\n"));
        assert!(refused(&[b'x'; MAX_HEAD + 1]));
        assert_eq!(
            parse(b"GET /events HTTP/1.1\r\n\r\n"),
            Parsed::Complete(
                Request::Subscribe {
                    stream: "default".into()
                },
                24
            )
        );
    }
}
