//! Attacks on access control and on secrets: forged and misused access tokens, and a camera
//! password that must never be shown.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

use super::{Report, owned, server_args};
use crate::Mode;
use crate::harness::{self, ATTACKER_IP, BYSTANDER_IP, Outcome, Server, Watch, client_from};
use crate::wire::{connect_from, events_request, read_for};

/// The HS256 secret the token server is started with (a test value, 32 bytes or more).
const SECRET: &str = "attack-suite-hs256-secret-0123456789abcdef";
/// How much of the refusal message the table shows.
const MESSAGE_SHOWN: usize = 110;
/// The password planted in `--source` values, which must never be shown.
const PASSWORD: &str = "hunter2";

/// A file among the test JWT keys.
fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/jwt-test-keys")
        .join(name)
}

/// Claims allowing `subscribe`, expiring `expires_in` seconds from now (negative: past).
fn claims(subscribe: &[&str], expires_in: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({ "sub": "attacks", "exp": now + expires_in, "framecast": { "subscribe": subscribe } })
}

/// An HS256 token for `claims`, signed with `secret`, minted by the `jsonwebtoken` crate.
fn hs256(claims: &Value, secret: &[u8]) -> anyhow::Result<String> {
    let key = EncodingKey::from_secret(secret);
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &key,
    )?)
}

/// An RS256 token for `claims`, signed with the test RSA key.
fn rs256(claims: &Value) -> anyhow::Result<String> {
    let pem = std::fs::read(key_file("rsa-private.pem"))?;
    let key = EncodingKey::from_rsa_pem(&pem)?;
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &key,
    )?)
}

/// A token built by hand, as libraries refuse to: header `{"alg": alg}`, and an HMAC-SHA256
/// signature with `hmac_key`, or none at all.
fn by_hand(alg: &str, claims: &Value, hmac_key: Option<&[u8]>) -> String {
    let header = json!({ "alg": alg, "typ": "JWT" });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match hmac_key {
        Some(key) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// 11. Tokens that must not open stream `cam`, and two that must, against a server that
///     takes HS256 (its secret) and RS256 (its public key).
pub async fn token_matrix(_mode: Mode) -> anyhow::Result<Report> {
    let public_key = key_file("rsa-public.pem");
    let args = server_args(&owned(&[
        "--jwt-secret",
        SECRET,
        "--jwt-public-key",
        &public_key.display().to_string(),
    ]));
    let server = Server::start(&args).await?;
    let viewer_token = hs256(&claims(&["default"], 3600), SECRET.as_bytes())?;

    let cam = claims(&["cam"], 600);
    let public_pem = std::fs::read(&public_key)?;
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("none", None, 401),
        (
            "wrong signature",
            Some(hs256(&cam, b"not-the-secret-but-just-as-long-0123456789")?),
            401,
        ),
        (
            "expired",
            Some(hs256(&claims(&["cam"], -3600), SECRET.as_bytes())?),
            401,
        ),
        (
            "wrong stream",
            Some(hs256(&claims(&["other"], 600), SECRET.as_bytes())?),
            403,
        ),
        ("alg none", Some(by_hand("none", &cam, None)), 401),
        (
            "HS256 keyed with the RSA public key",
            Some(by_hand("HS256", &cam, Some(&public_pem))),
            401,
        ),
        ("valid HS256", Some(hs256(&cam, SECRET.as_bytes())?), 200),
        ("valid RS256", Some(rs256(&cam)?), 200),
    ];
    let expected: Vec<String> = cases
        .iter()
        .map(|(name, _, status)| format!("{name} {status}"))
        .collect();

    let watch = Watch::begin(&server, Some(&viewer_token)).await?;
    let client = client_from(ATTACKER_IP);
    let mut observed = Vec::new();
    let mut passed = true;
    for (name, token, want) in &cases {
        let mut request = client.get(server.url("/events?stream=cam"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let status = request.send().await?.status().as_u16();
        passed &= status == *want;
        observed.push(format!("{name} {status}"));
    }
    let (memory, kept) = watch.finish().await?;
    Ok(Report {
        flags: format!(
            "--jwt-secret ({} bytes), --jwt-public-key tests/fixtures/jwt-test-keys/rsa-public.pem",
            SECRET.len()
        ),
        expected: format!("GET /events?stream=cam: {}", expected.join(", ")),
        outcome: Outcome {
            observed: observed.join(", "),
            passed,
        },
        watched: Some((memory, kept)),
    })
}

/// 13. A camera password in `--source`: in a value the server refuses, and in valid ones it
///     logs about at debug level while the cameras fail.
pub async fn secrets(_mode: Mode) -> anyhow::Result<Report> {
    let bad = format!("cam=http://user:{PASSWORD}@127.0.0.1:1/video?pwd={PASSWORD} bogus-option");
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(harness::binary())
            .args([
                "--bind",
                "127.0.0.1:0",
                "--no-test-pattern",
                "--source",
                &bad,
            ])
            .output(),
    )
    .await??;
    let refusal = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );

    let sources = [
        format!("cam=http://127.0.0.1:1/x?pwd={PASSWORD}"),
        format!("cam2=http://admin:{PASSWORD}@127.0.0.1:1/y"),
    ];
    let flags = owned(&["--source", &sources[0], "--source", &sources[1]]);
    let env = [("FRAMECAST_LOG", "framecast=debug")];
    let mut server = Server::start_with_env(&server_args(&flags), &env).await?;
    let watch = Watch::begin(&server, None).await?;
    // Viewers wake the cameras (they connect on demand), which then fail and say why.
    let mut shown = Vec::new();
    for stream in ["cam", "cam2"] {
        let mut socket = connect_from(ATTACKER_IP, server.addr, None).await?;
        socket
            .write_all(&events_request(stream, "127.0.0.1"))
            .await?;
        shown.push(socket);
    }
    let mut events = Vec::new();
    for socket in &mut shown {
        events.extend(read_for(socket, Duration::from_millis(1500)).await.0);
    }
    let listing = client_from(BYSTANDER_IP)
        .get(server.url("/streams"))
        .send()
        .await?
        .text()
        .await?;
    let (memory, kept) = watch.finish().await?;
    drop(shown);
    server.stop().await?;
    let logs = server.output();

    let about_cameras = logs.lines().filter(|line| line.contains("cam")).count();
    let in_refusal = refusal.contains(PASSWORD);
    let in_logs = logs.contains(PASSWORD);
    let in_events = String::from_utf8_lossy(&events).contains(PASSWORD);
    let in_listing = listing.contains(PASSWORD);
    let mut message: String = refusal.trim().chars().take(MESSAGE_SHOWN).collect();
    if message.len() < refusal.trim().len() {
        message.push('…');
    }
    let observed = format!(
        "bad value: exit {}, said {message:?}, {PASSWORD} shown: {}; valid sources at debug: \
         {} log lines ({about_cameras} about the cameras), {PASSWORD} shown in logs: {}, in \
         their event streams: {}, in /streams: {}",
        refused
            .status
            .code()
            .map_or("by signal".into(), |c| c.to_string()),
        super::yes(in_refusal),
        logs.lines().count(),
        super::yes(in_logs),
        super::yes(in_events),
        super::yes(in_listing),
    );
    Ok(Report {
        flags: format!(
            "--source '{bad}' (refused); then --source '{}', --source '{}' with \
             FRAMECAST_LOG=framecast=debug",
            sources[0], sources[1]
        ),
        expected: format!(
            "the bad value: non-zero exit, {PASSWORD} not in the message; valid ones: {PASSWORD} \
             in no log line, event or /streams"
        ),
        outcome: Outcome {
            observed,
            passed: !refused.status.success()
                && !in_refusal
                && !in_logs
                && !in_events
                && !in_listing
                && about_cameras > 0,
        },
        watched: Some((memory, kept)),
    })
}
