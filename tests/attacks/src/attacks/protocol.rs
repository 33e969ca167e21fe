//! Attacks on HTTP framing around the event-stream path, which framecast serves partly outside
//! hyper, and on the `Host` check that stops DNS rebinding.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{Report, on_fresh_server, sample_jpeg, subscribers};
use crate::Mode;
use crate::harness::{ATTACKER_IP, Outcome, Server, streams};
use crate::wire::{connect_from, count_heads, exchange, read_for, status_of};

/// How long to listen for a second response that must not come.
const LISTEN: Duration = Duration::from_millis(1500);

/// What came back on one connection: the first status, how many response heads, and whether
/// the server closed it.
struct Heard {
    status: Option<u16>,
    heads: usize,
    closed: bool,
}

impl std::fmt::Display for Heard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self
            .status
            .map_or("no answer".into(), |code| code.to_string());
        write!(
            f,
            "{status}, {} response head(s), connection {}",
            self.heads,
            if self.closed { "closed" } else { "open" }
        )
    }
}

/// Sends `bytes` in one write on a new connection and listens for [`LISTEN`].
async fn send_raw(server: &Server, bytes: &[u8]) -> anyhow::Result<Heard> {
    let mut socket = connect_from(ATTACKER_IP, server.addr, None).await?;
    socket.write_all(bytes).await?;
    let (received, closed) = read_for(&mut socket, LISTEN).await;
    Ok(Heard {
        status: status_of(&received),
        heads: count_heads(&received),
        closed,
    })
}

/// A GET request head for `target`, with `extra` header lines (each ending in CRLF).
fn get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n")
}

/// Whether `GET /streams` lists a stream called `name`.
async fn listed(server: &Server, name: &str) -> anyhow::Result<bool> {
    Ok(streams(server, None)
        .await?
        .iter()
        .any(|stream| stream["name"] == name))
}

/// 10a. Two `GET /events` in one write: the direct path reads only the first head.
pub async fn pipelined(_mode: Mode) -> anyhow::Result<Report> {
    let expected = "one response (the stream); the second request never becomes a subscription: \
                    /streams shows 1 subscriber";
    on_fresh_server(vec![], expected.into(), async |server| {
        let first = get("/events?stream=pipe", "");
        let both = format!("{first}{first}");
        let mut socket = connect_from(ATTACKER_IP, server.addr, None).await?;
        socket.write_all(both.as_bytes()).await?;
        let (received, closed) = read_for(&mut socket, LISTEN).await;
        let heard = Heard {
            status: status_of(&received),
            heads: count_heads(&received),
            closed,
        };
        let count = subscribers(server, "pipe").await?;
        drop(socket);
        let listed = count.map_or("is not listed".into(), |n| format!("has {n} subscriber(s)"));
        Ok(Outcome {
            observed: format!("{heard}; /streams: pipe {listed}"),
            passed: heard.status == Some(200) && heard.heads == 1 && count == Some(1),
        })
    })
    .await
}

/// 10b. `GET /events` with both `Content-Length` and `Transfer-Encoding: chunked`, the
///      chunked body ending early so that the bytes after it read as a second request: the
///      classic request-smuggling shape, for a stream and for a refused (finite) request.
pub async fn length_and_chunked(_mode: Mode) -> anyhow::Result<Report> {
    let expected = "refused with 400; never a second request (no `smuggled` stream)";
    on_fresh_server(vec![], expected.into(), async |server| {
        let probe = async |target: &str, smuggled: &str| -> anyhow::Result<(Heard, bool)> {
            let inner = get(&format!("/events?stream={smuggled}"), "");
            let body = format!("0\r\n\r\n{inner}");
            let extra = format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                body.len()
            );
            let heard =
                send_raw(server, format!("{}{body}", get(target, &extra)).as_bytes()).await?;
            Ok((heard, listed(server, smuggled).await?))
        };
        let (stream, smuggled) = probe("/events?stream=smug", "smuggled").await?;
        let (finite, smuggled_after_400) = probe("/events?stream=bad!name", "smuggled2").await?;
        Ok(Outcome {
            observed: format!(
                "stream request: {stream}, smuggled request ran: {}; refused request \
                 (bad name): {finite}, smuggled request ran: {}",
                super::yes(smuggled),
                super::yes(smuggled_after_400)
            ),
            passed: stream.status == Some(400)
                && stream.heads == 1
                && !smuggled
                && finite.heads == 1
                && !smuggled_after_400,
        })
    })
    .await
}

/// 10c. A `GET /events` whose `Content-Length` body is itself a request, for a stream and for
///      a refused (finite) request, after which hyper reads on.
pub async fn request_in_body(_mode: Mode) -> anyhow::Result<Report> {
    let expected = "one response; the request in the body never runs (no `inner` stream)";
    on_fresh_server(vec![], expected.into(), async |server| {
        let probe = async |target: &str, inner_name: &str| -> anyhow::Result<(Heard, bool)> {
            let inner = get(&format!("/events?stream={inner_name}"), "");
            let extra = format!("Content-Length: {}\r\n", inner.len());
            let heard =
                send_raw(server, format!("{}{inner}", get(target, &extra)).as_bytes()).await?;
            Ok((heard, listed(server, inner_name).await?))
        };
        let (stream, ran) = probe("/events?stream=outer", "inner").await?;
        let (finite, ran_after_400) = probe("/events?stream=bad!name", "inner2").await?;
        Ok(Outcome {
            observed: format!(
                "stream request: {stream}, inner request ran: {}; refused request (bad name): \
                 {finite}, inner request ran: {}",
                super::yes(ran),
                super::yes(ran_after_400)
            ),
            passed: stream.status == Some(200)
                && stream.heads == 1
                && !ran
                && finite.status == Some(400)
                && finite.heads == 1
                && !ran_after_400,
        })
    })
    .await
}

/// 12. A page on `evil.example`, rebound to 127.0.0.1, reads and publishes: the browser still
///     sends `Host: evil.example`.
pub async fn dns_rebinding(_mode: Mode) -> anyhow::Result<Report> {
    let expected = "403 for GET /events, GET /streams and POST /frames with Host: evil.example \
                    (the same with Host: localhost: 200)";
    on_fresh_server(vec![], expected.into(), async |server| {
        let jpeg = sample_jpeg(64, 48, 3);
        let ask = async |host: &str| -> anyhow::Result<Vec<u16>> {
            let mut statuses = Vec::new();
            let post = format!(
                "POST /frames?stream=rebound HTTP/1.1\r\nHost: {host}\r\nContent-Type: \
                 image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            );
            let mut post = post.into_bytes();
            post.extend_from_slice(&jpeg);
            for request in [
                format!("GET /events?stream=default HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
                format!("GET /streams HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
                post,
            ] {
                let (answer, _, _) =
                    exchange(ATTACKER_IP, server.addr, &request, Duration::from_secs(3)).await?;
                statuses.push(answer.status().unwrap_or(0));
            }
            Ok(statuses)
        };
        let evil = ask("evil.example").await?;
        let local = ask(&format!("localhost:{}", server.addr.port())).await?;
        Ok(Outcome {
            observed: format!("evil.example: {evil:?}; localhost: {local:?}"),
            passed: evil == [403, 403, 403] && local == [200, 200, 200],
        })
    })
    .await
}
