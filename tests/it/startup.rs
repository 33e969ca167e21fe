//! Starting the real binary: every startup error is reported at once, before any "listening"
//! line, with a non-zero exit; what starts, starts as the flags say.

use std::process::Stdio;
use tokio::process::Command;

use crate::common::{LoggedBinary, WAIT};

/// What a run of the binary that ended by itself left behind.
struct Ended {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` (test pattern off) and expects it to end by itself.
async fn run_to_exit(args: &[&str]) -> Ended {
    let child = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .arg("--no-test-pattern")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("framecast {args:?} is still running: it should have exited"))
        .unwrap();
    Ended {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Expects `args` to be refused at startup with a message containing `says`.
pub async fn refused(args: &[&str], says: &str) -> String {
    let ended = run_to_exit(args).await;
    assert!(!ended.success, "{args:?} should fail");
    assert!(
        !ended.stdout.contains("listening"),
        "{args:?} announced a listener before failing: {}",
        ended.stdout
    );
    assert!(ended.stderr.contains(says), "{args:?}: {}", ended.stderr);
    ended.stderr
}

#[tokio::test]
async fn two_sources_for_one_stream_stop_the_start() {
    refused(
        &[
            "--bind",
            "127.0.0.1:0",
            "--source",
            "a=-",
            "--source",
            "a=-",
        ],
        "stream \"a\" is given two sources",
    )
    .await;
}

#[tokio::test]
async fn an_unreadable_replay_source_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("framecast-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A socket file exists but cannot be opened, even by root.
    let path = dir.join("not-a-file.sock");
    let _ = std::fs::remove_file(&path);
    let _socket = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let source = format!("clip={}", path.display());
    refused(
        &["--bind", "127.0.0.1:0", "--source", &source],
        "cannot read",
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_port_in_use_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    refused(&["--bind", &address], "cannot listen").await;
}

#[tokio::test]
async fn a_bind_address_that_is_not_host_and_port_stops_the_start() {
    refused(&["--bind", "8080"], "use HOST:PORT").await;
    refused(&["--bind", "no-such-host.invalid:8080"], "cannot resolve").await;
}

#[tokio::test]
async fn unsupported_schemes_and_bad_numbers_say_what_is_wrong_without_the_password() {
    let stderr = refused(
        &["--source", "cam=rtsp://admin:hunter2@10.0.0.9/stream"],
        "rtsp:// sources are not supported",
    )
    .await;
    assert!(stderr.contains("http:// and https://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let stderr = refused(
        &["--source", "cam=http://admin:hunter2@[bad/ fps=5"],
        "not valid",
    )
    .await;
    assert!(!stderr.contains("hunter2"), "{stderr}");
    refused(&["--source", "cam=- fps=abc"], "not a whole number").await;
    refused(&["--source", "cam=- fps=500"], "out of range").await;
}

#[tokio::test]
async fn an_invalid_cors_origin_stops_the_start() {
    refused(
        &["--cors-origins", "http://a.test, http://b.test/path"],
        "is not an origin",
    )
    .await;
}

#[tokio::test]
async fn cors_origins_are_trimmed() {
    let (_server, url) = crate::common::spawn_binary(
        &["--cors-origins", "http://a.test, http://b.test"],
        Stdio::null(),
    )
    .await;
    let response = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .header("origin", "http://b.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://b.test"
    );
}

#[tokio::test]
async fn a_host_name_is_accepted_as_the_bind_address() {
    let (_server, url) =
        crate::common::spawn_binary(&["--bind", "localhost:0"], Stdio::null()).await;
    let response = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn logs_into_a_pipe_have_no_colour_codes() {
    let mut server = LoggedBinary::start(&[]).await;
    // The test pattern logs its start and its first state change.
    let logs = server.wait_for_log("source state").await;
    assert!(!logs.contains('\u{1b}'), "colour codes in a pipe: {logs}");
}

#[tokio::test]
async fn a_camera_password_in_the_query_never_reaches_the_logs() {
    // Nothing listens on this port: the camera is tried, fails and is logged, with its URL.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    let source = format!("cam=http://127.0.0.1:{port}/video.cgi?user=admin&pwd=hunter2 always-on");
    let mut server = LoggedBinary::start(&["--no-test-pattern", "--source", &source]).await;
    let logs = server.wait_for_log("camera failed").await;
    assert!(logs.contains("pwd=***"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_same_fields() {
    let mut server =
        crate::common::LoggedBinary::start(&["--no-test-pattern", "--log-format", "json"]).await;
    server.wait_for_log("listening").await;
    let logs = server.stop_and_read_logs().await;
    let mut seen = 0;
    for line in logs.lines() {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON object per line ({err}): {line}"));
        assert!(
            object["level"].is_string() && object["message"].is_string(),
            "{line}"
        );
        if object["message"] == "listening" {
            assert!(
                object["address"]
                    .as_str()
                    .unwrap()
                    .starts_with("127.0.0.1:"),
                "{line}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 1, "{logs}");
}
