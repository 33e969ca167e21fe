//! HTTPS: with `--tls-cert` and `--tls-key`, every route over HTTP/2 and HTTP/1.1, and many
//! event streams over one HTTP/2 connection.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{EventReader, TestServer, sample_jpeg};

/// A self-signed certificate for 127.0.0.1 and localhost, made by `openssl` in a fresh folder.
struct Certificate {
    dir: PathBuf,
}

impl Certificate {
    fn make(name: &str) -> Certificate {
        let dir = std::env::temp_dir().join(format!("framecast-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // A server certificate, not a CA: rustls refuses a CA as the end of a chain.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success());
        Certificate { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// A client that trusts this certificate and, over TLS, prefers HTTP/2.
    fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(self.cert()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(certificate: &Certificate) -> TestServer {
    let (cert, key) = (certificate.cert(), certificate.key());
    TestServer::start_with(move |config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
    })
    .await
}

fn https(server: &TestServer, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", server.addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_event_streams_share_one_http2_connection() {
    let certificate = Certificate::make("h2");
    let server = start(&certificate).await;
    let client = certificate.client();
    let mut readers = Vec::new();
    for n in 0..16 {
        let response = client
            .get(https(&server, &format!("/events?stream=cam{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        readers.push(EventReader::from_body(Box::pin(
            futures_util::StreamExt::boxed(response.bytes_stream()),
        )));
    }
    let frame = sample_jpeg(160, 120, 5);
    for n in 0..16 {
        let response = client
            .post(https(&server, &format!("/frames?stream=cam{n}")))
            .header("content-type", "image/jpeg")
            .body(frame.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "an upload over HTTP/2");
    }
    for reader in &mut readers {
        assert_eq!(reader.next_frame().await.unwrap().jpeg(), frame);
    }
    let all: serde_json::Value = client
        .get(https(&server, "/streams"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["viewers"], 16);
}

#[tokio::test]
async fn curl_gets_http2_and_http1_over_tls_and_plain_http_is_refused() {
    let certificate = Certificate::make("curl");
    let server = start(&certificate).await;
    let response = certificate
        .client()
        .post(https(&server, "/frames?stream=cam"))
        .header("content-type", "image/jpeg")
        .body(sample_jpeg(32, 32, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let output = tokio::process::Command::new("curl")
            .args(["-sN", "--max-time", "1", flag, "--cacert"])
            .arg(certificate.cert())
            .args(["-w", "\nversion %{http_version}\n"])
            .arg(https(&server, "/events?stream=cam&payload=none"))
            .output()
            .await
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("\"stream\":\"cam\",\"seq\":1,"),
            "{flag}: {text}"
        );
        assert!(
            text.contains(&format!("version {version}\n")),
            "{flag}: {text}"
        );
    }
    let plain = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP on the HTTPS port gets no answer"
    );
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_the_start() {
    let certificate = Certificate::make("bad");
    let other = Certificate::make("other");
    for (cert, key, says) in [
        (certificate.cert(), other.key(), "does not fit"),
        (certificate.key(), certificate.key(), "holds no certificate"),
        (
            certificate.dir.join("missing.pem"),
            certificate.key(),
            "cannot read the TLS certificate",
        ),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(["--bind", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .output();
        let output = tokio::time::timeout(crate::common::WAIT, output)
            .await
            .expect("it exits")
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
}

#[tokio::test]
async fn the_binary_announces_an_https_address() {
    let certificate = Certificate::make("announce");
    let (cert, key) = (certificate.cert(), certificate.key());
    let (_server, url) = crate::common::spawn_binary(
        &[
            "--no-test-pattern",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        std::process::Stdio::null(),
    )
    .await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let response = certificate
        .client()
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
