//! The systemd example: `deploy/framecast.service` and `deploy/framecast.env`.
//!
//! framecast is started with exactly the variables the unit and the environment file give
//! it, `systemd-analyze` checks the unit, and every `FRAMECAST_*` name either file mentions
//! must be one framecast knows: clap ignores variables it does not know, so a misspelt name
//! would otherwise go unnoticed.

use std::path::{Path, PathBuf};

use crate::common::{WAIT, spawn_command};

const UNIT: &str = include_str!("../../deploy/framecast.service");
const ENV_FILE: &str = include_str!("../../deploy/framecast.env");
const NGINX_SITE: &str = include_str!("../../deploy/nginx.conf");
/// Where Debian's `systemd` package puts it.
const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("framecast-deploy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `NAME=value` as a systemd environment file or `Environment=` line has it. Quotes, which
/// systemd would strip, are refused: this reading would keep them.
fn assignment(line: &str) -> (String, String) {
    let (name, value) = line
        .split_once('=')
        .unwrap_or_else(|| panic!("not NAME=value: {line:?}"));
    assert!(
        !value.contains(['"', '\'']),
        "keep the examples free of quotes: {line:?}"
    );
    (name.trim().to_owned(), value.trim().to_owned())
}

/// The value of the unit's `key=` lines that are not commented out.
fn unit_settings(key: &str) -> impl Iterator<Item = &'static str> + '_ {
    UNIT.lines()
        .filter_map(move |line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Every variable the service gets: the unit's `Environment=` lines with `%d` (the
/// credentials folder) made `credentials`, then the environment file's, which win.
fn service_environment(credentials: &Path) -> Vec<(String, String)> {
    let mut variables: Vec<(String, String)> = unit_settings("Environment")
        .map(|line| line.replace("%d", &credentials.display().to_string()))
        .map(|line| assignment(&line))
        .collect();
    for line in ENV_FILE.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = assignment(line);
        variables.retain(|(other, _)| *other != name);
        variables.push((name, value));
    }
    variables
}

/// Writes a secret for each of the unit's `LoadCredential=NAME:PATH` into `dir/NAME`, as
/// systemd would copy it there; returns each name and secret.
fn make_credentials(dir: &Path) -> Vec<(String, String)> {
    unit_settings("LoadCredential")
        .map(|setting| {
            let (name, _path) = setting.split_once(':').expect("LoadCredential=NAME:PATH");
            // Long enough for any of framecast's secrets (the JWT secret needs 32 bytes).
            let secret = format!("{name}-0123456789abcdef0123456789abcdef");
            std::fs::write(dir.join(name), format!("{secret}\n")).unwrap();
            (name.to_owned(), secret)
        })
        .collect()
}

fn value<'a>(variables: &'a [(String, String)], name: &str) -> Option<&'a str> {
    variables
        .iter()
        .find(|(other, _)| other == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn the_example_environment_starts_framecast_as_the_unit_would() {
    let scratch = Scratch::new("env");
    let credentials = make_credentials(&scratch.0);
    let mut variables = service_environment(&scratch.0);
    let bind = variables
        .iter_mut()
        .find(|(name, _)| name == "FRAMECAST_BIND")
        .expect("the environment file sets FRAMECAST_BIND");
    let (host, _port) = bind.1.rsplit_once(':').unwrap();
    bind.1 = format!("{host}:0");

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_framecast"));
    command.env_clear().envs(variables.iter().cloned());
    let (_framecast, url) = spawn_command(command).await;
    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let healthz = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);

    // The public name nginx passes on is allowed.
    let public_name = value(&variables, "FRAMECAST_ALLOWED_HOSTS").unwrap();
    let streams = client
        .get(format!("{url}/streams"))
        .header("host", public_name)
        .send()
        .await
        .unwrap();
    assert_eq!(streams.status(), 200);

    // The publish token came from its credential: uploads without it are refused.
    if value(&variables, "FRAMECAST_PUBLISH_TOKEN_FILE").is_some() {
        let (_, token) = credentials
            .iter()
            .find(|(name, _)| name == "publish-token")
            .expect("the publish token is a credential");
        let jpeg = crate::common::sample_jpeg(64, 48, 1);
        let upload = |token: Option<&str>| {
            let mut request = client
                .post(format!("{url}/frames?stream=cam"))
                .header("content-type", "image/jpeg")
                .body(jpeg.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        assert_eq!(upload(None).await.unwrap().status(), 401);
        assert_eq!(upload(Some(token)).await.unwrap().status(), 200);
    }
}

/// Every `FRAMECAST_…` name in `text`, except the `FRAMECAST_*` of prose.
fn variable_names(text: &str) -> Vec<&str> {
    text.match_indices("FRAMECAST_")
        .map(|(at, _)| {
            let len = text[at..]
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(text.len() - at);
            &text[at..at + len]
        })
        .filter(|name| !name.ends_with('_'))
        .collect()
}

#[test]
fn every_variable_the_examples_name_is_one_framecast_knows() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_framecast"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let known = variable_names(&help);
    assert!(known.len() >= 30, "framecast --help lists only {known:?}");
    let mut named = 0;
    for (file, text) in [("framecast.env", ENV_FILE), ("framecast.service", UNIT)] {
        // Commented-out lines too: they are what an operator uncomments.
        for name in variable_names(text) {
            assert!(
                known.contains(&name),
                "deploy/{file} names {name}, which framecast --help does not list"
            );
            named += 1;
        }
    }
    assert!(named >= 10, "only {named} variables found");
}

#[test]
fn the_nginx_and_systemd_examples_agree() {
    let scratch = Scratch::new("agree");
    let variables = service_environment(&scratch.0);
    let directive = |name: &str| {
        NGINX_SITE
            .lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_suffix(';'))
            .unwrap_or_else(|| panic!("deploy/nginx.conf has no {name}"))
            .trim()
            .to_owned()
    };
    let upstreams: Vec<&str> = NGINX_SITE
        .lines()
        .filter_map(|line| line.trim().strip_prefix("server ")?.strip_suffix(';'))
        .collect();
    assert!(!upstreams.is_empty(), "deploy/nginx.conf has no upstream");
    for upstream in upstreams {
        assert_eq!(
            value(&variables, "FRAMECAST_BIND"),
            Some(upstream),
            "nginx's upstreams are where framecast listens"
        );
    }
    let allowed = value(&variables, "FRAMECAST_ALLOWED_HOSTS").unwrap_or_default();
    for name in directive("server_name ").split_whitespace() {
        assert!(
            allowed.split(',').any(|host| host.trim() == name),
            "nginx's server_name {name} is missing from FRAMECAST_ALLOWED_HOSTS ({allowed}): \
             framecast would refuse every request"
        );
    }
    assert_eq!(value(&variables, "FRAMECAST_TRUST_PROXY"), Some("true"));
}

#[test]
fn systemd_analyze_finds_nothing_wrong_with_the_unit() {
    assert!(
        Path::new(SYSTEMD_ANALYZE).exists(),
        "{SYSTEMD_ANALYZE} is missing: install Debian's `systemd` package (tests/all.sh does)"
    );
    let scratch = Scratch::new("unit");
    // The one change: `verify` insists that ExecStart exists, so it runs the binary built here.
    let unit = UNIT.replace(
        "ExecStart=/usr/local/bin/framecast",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_framecast")),
    );
    assert_ne!(unit, UNIT, "the unit's ExecStart moved");
    let path = scratch.0.join("framecast.service");
    std::fs::write(&path, unit).unwrap();
    let verify = std::process::Command::new(SYSTEMD_ANALYZE)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("framecast"))
        .collect();
    assert!(
        verify.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {said}"
    );

    // How exposed systemd judges the service, from 0 (locked down) to 10.
    let security = std::process::Command::new(SYSTEMD_ANALYZE)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for framecast.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    eprintln!("systemd-analyze security: exposure {exposure} of 10");
    assert!(exposure <= 2.0, "the unit's sandbox got weaker: {report}");
}
