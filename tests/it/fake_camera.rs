//! A fake IP camera on 127.0.0.1:0, written against the bytes a real one sends.
//!
//! It serves an MJPEG stream (`multipart/x-mixed-replace`) or one JPEG per request, counts its
//! connections, and can misbehave on cue: stall in the middle of a frame, close the stream every
//! N frames, go down (connections refused) and come back on the same port, and demand Basic or
//! Digest authentication. Digest answers are checked by hand (RFC 7616, MD5, qop=auth) rather
//! than with the crate the server uses, so a shared mistake cannot pass.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::common::sample_jpeg;

/// How the camera answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One endless `multipart/x-mixed-replace` response per connection.
    Stream,
    /// One `image/jpeg` per request, connections kept alive.
    Snapshot,
}

/// Which authentication it demands.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Digest { user: String, password: String },
}

/// How the camera is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    pub mode: Mode,
    pub auth: Auth,
    pub fps: u32,
    /// End the stream after this many frames (a camera that drops clients now and then).
    pub close_every: Option<usize>,
    /// Label the stream `image/jpeg`, as some cameras wrongly do.
    pub mislabelled: bool,
}

impl Auth {
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn digest(user: &str, password: &str) -> Auth {
        Auth::Digest {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            mode: Mode::Stream,
            auth: Auth::None,
            fps: 20,
            close_every: None,
            mislabelled: false,
        }
    }
}

/// The frames the camera cycles through: real JPEGs, each different.
const FRAME_COUNT: u32 = 10;
const REALM: &str = "fake-camera";
const NONCE: &str = "6a3f0c1d9e8b7a65";

pub struct FakeCamera {
    pub addr: SocketAddr,
    state: Arc<State>,
    listener: Mutex<Option<AbortHandle>>,
}

struct State {
    setup: Setup,
    frames: Vec<Vec<u8>>,
    /// TCP connections accepted so far.
    connections: AtomicUsize,
    /// Connections open now.
    open: AtomicUsize,
    /// Requests answered with 401.
    challenged: AtomicUsize,
    /// Requests answered with a picture (a stream or a snapshot).
    served: AtomicUsize,
    stalled: AtomicBool,
    /// Connection tasks, aborted when the camera goes down.
    tasks: Mutex<Vec<AbortHandle>>,
}

impl FakeCamera {
    pub async fn start(setup: Setup) -> FakeCamera {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            setup,
            frames: (0..FRAME_COUNT)
                .map(|i| sample_jpeg(64, 48, 1000 + i))
                .collect(),
            connections: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            challenged: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let camera = FakeCamera {
            addr,
            state,
            listener: Mutex::new(None),
        };
        camera.listen(listener);
        camera
    }

    fn listen(&self, listener: TcpListener) {
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                state.connections.fetch_add(1, Ordering::SeqCst);
                let connection = tokio::spawn(serve(state.clone(), socket));
                state.tasks.lock().unwrap().push(connection.abort_handle());
            }
        });
        *self.listener.lock().unwrap() = Some(task.abort_handle());
    }

    /// `http://127.0.0.1:PORT/video.mjpg`, with `user:password@` if given.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        let path = match self.state.setup.mode {
            Mode::Stream => "video.mjpg",
            Mode::Snapshot => "snapshot.jpg?channel=1",
        };
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}/{path}", self.addr),
            None => format!("http://{}/{path}", self.addr),
        }
    }

    /// Whether `jpeg` is one of the pictures this camera sent.
    pub fn sent(&self, jpeg: &[u8]) -> bool {
        self.state.frames.iter().any(|frame| frame == jpeg)
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    pub fn challenged(&self) -> usize {
        self.state.challenged.load(Ordering::SeqCst)
    }

    pub fn served(&self) -> usize {
        self.state.served.load(Ordering::SeqCst)
    }

    /// From now on, stop in the middle of the next frame and send nothing more.
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
    }

    /// Serve normally again (new connections; a stalled one stays stalled).
    pub fn resume(&self) {
        self.state.stalled.store(false, Ordering::SeqCst);
    }

    /// Stops listening and cuts every connection: connecting now fails.
    pub fn go_down(&self) {
        if let Some(listener) = self.listener.lock().unwrap().take() {
            listener.abort();
        }
        for task in self.state.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.listen(listener);
    }
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.go_down();
    }
}

/// Counts an open connection for as long as it lives (even when its task is aborted).
struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(state: Arc<State>, socket: TcpStream) {
    state.open.fetch_add(1, Ordering::SeqCst);
    let _open = OpenGuard(state.clone());
    let mut socket = BufReader::new(socket);
    let mut frame_index = 0usize;
    loop {
        let Some(request) = read_request(&mut socket).await else {
            return;
        };
        if !authorized(&state.setup.auth, &request) {
            state.challenged.fetch_add(1, Ordering::SeqCst);
            let challenge = match &state.setup.auth {
                Auth::Basic { .. } => format!("Basic realm=\"{REALM}\""),
                _ => format!(
                    "Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{NONCE}\", \
                     opaque=\"0paque\", algorithm=MD5"
                ),
            };
            let body = "<html>401 Unauthorized</html>";
            let head = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\n\
                 Content-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if socket.get_mut().write_all(head.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        state.served.fetch_add(1, Ordering::SeqCst);
        match state.setup.mode {
            Mode::Snapshot => {
                let jpeg = &state.frames[frame_index % state.frames.len()];
                frame_index += 1;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    jpeg.len()
                );
                let stream = socket.get_mut();
                if stream.write_all(head.as_bytes()).await.is_err()
                    || stream.write_all(jpeg).await.is_err()
                {
                    return;
                }
            }
            Mode::Stream => {
                stream_frames(&state, socket.get_mut()).await;
                return;
            }
        }
    }
}

/// Writes frames as a multipart stream until told to stop, stall or close.
async fn stream_frames(state: &State, socket: &mut TcpStream) {
    // Like many cameras: no Content-Length, Connection: close, a per-part Content-Length.
    let content_type = match state.setup.mislabelled {
        true => "image/jpeg",
        false => "multipart/x-mixed-replace;boundary=camframe",
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / state.setup.fps);
    for sent in 0.. {
        ticks.tick().await;
        if state.setup.close_every == Some(sent) {
            return;
        }
        let jpeg = &state.frames[sent % state.frames.len()];
        let mut part = format!(
            "--camframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        )
        .into_bytes();
        part.extend_from_slice(jpeg);
        part.extend_from_slice(b"\r\n");
        if state.stalled.load(Ordering::SeqCst) {
            // Half a frame, then silence with the connection left open.
            let _ = socket.write_all(&part[..part.len() / 2]).await;
            std::future::pending::<()>().await;
        }
        if socket.write_all(&part).await.is_err() {
            return;
        }
    }
}

/// A request's path and `Authorization` header; `None` when the client went away.
struct Request {
    authorization: Option<String>,
}

async fn read_request(socket: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut authorization = None;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if socket.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end();
        if first {
            assert!(
                trimmed.starts_with("GET /"),
                "unexpected request {trimmed:?}"
            );
            first = false;
            continue;
        }
        if trimmed.is_empty() {
            return Some(Request { authorization });
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
}

fn authorized(auth: &Auth, request: &Request) -> bool {
    let given = request.authorization.as_deref();
    match auth {
        Auth::None => true,
        Auth::Basic { user, password } => {
            use base64::Engine as _;
            let expected =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            given == Some(format!("Basic {expected}").as_str())
        }
        Auth::Digest { user, password } => {
            given.is_some_and(|header| digest_matches(header, user, password))
        }
    }
}

/// Checks a `Digest` answer to this camera's challenge (MD5, qop=auth).
fn digest_matches(header: &str, user: &str, password: &str) -> bool {
    let Some(fields) = header.strip_prefix("Digest ") else {
        return false;
    };
    let field = |name: &str| -> Option<String> {
        fields.split(',').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.trim_matches('"').to_owned())
        })
    };
    let (Some(username), Some(uri), Some(nc), Some(cnonce), Some(response)) = (
        field("username"),
        field("uri"),
        field("nc"),
        field("cnonce"),
        field("response"),
    ) else {
        return false;
    };
    let md5_hex = |text: String| -> String {
        Md5::digest(text.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    let ha1 = md5_hex(format!("{user}:{REALM}:{password}"));
    let ha2 = md5_hex(format!("GET:{uri}"));
    let expected = md5_hex(format!("{ha1}:{NONCE}:{nc}:{cnonce}:auth:{ha2}"));
    username == user && field("nonce").as_deref() == Some(NONCE) && response == expected
}
