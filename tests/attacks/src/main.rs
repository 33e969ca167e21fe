//! framecast's attack suite: replays what a hostile client would do against the real release
//! binary, from outside, and prints one Markdown table row per attack with what was expected,
//! what happened, the server's memory, and whether a healthy viewer kept its frames.
//!
//! # Why from outside
//!
//! The integration tests run the server in their own process, which is right for behaviour but
//! hides what matters under attack: the memory of the process that serves, its file
//! descriptors, its CPU, the kernel's socket buffers, and what a client actually sees on the
//! wire. So this suite starts `target/release/framecast` (or `FRAMECAST_BIN`) as a child
//! process, one fresh server per attack so each memory figure is that attack's own, and talks to
//! it over loopback TCP, often byte by byte.
//!
//! # What passes
//!
//! Each attack states what framecast should do (refuse with this status, close within that
//! time, stay under this much memory) and checks exactly that; a row fails when the observed
//! outcome differs, and it is printed as observed rather than explained away. Throughout each
//! attack a healthy viewer, from an address of its own, reads stream `default` (the test
//! pattern at 10 fps); the row also fails if it received fewer than 99 % of the frames
//! published during the attack. The process exits non-zero if any row failed.
//!
//! # Layout
//!
//! - `harness`: starting servers, `/proc` figures, the healthy viewer, the table.
//! - `wire`: raw HTTP over TCP.
//! - `attacks`: one function per attack, grouped by what they go after.
//!
//! Run `cargo run --release -p attacks` for the short form (under 90 s, in CI), `-- --long` for
//! the full-size one, `-- --only 3,6a` for some attacks.

mod attacks;
mod harness;
mod wire;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use crate::harness::Row;

/// Replays attacks against the framecast release binary and prints a Markdown table.
#[derive(Debug, Parser)]
struct Args {
    /// Full-size attacks with the server's default timeouts (a few minutes).
    #[arg(long)]
    long: bool,
    /// Only these attacks, by number, comma-separated (e.g. `3,6a,10`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Short or long: the sizes and timeouts of every attack.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// The full-size form.
    pub long: bool,
}

impl Mode {
    /// `short` in the short form, `long` in the long one.
    pub fn pick<T>(self, short: T, long: T) -> T {
        if self.long { long } else { short }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mode = Mode { long: args.long };
    let binary = harness::binary();
    if !binary.exists() {
        eprintln!(
            "attacks: {} does not exist; build it with `cargo build --release` or set FRAMECAST_BIN",
            binary.display()
        );
        return ExitCode::FAILURE;
    }
    if std::env::var_os("FRAMECAST_BIN").is_none() && is_stale(&binary) {
        eprintln!(
            "attacks: {} is older than framecast's sources; rebuild it with `cargo build --release`",
            binary.display()
        );
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    for attack in &attacks::ALL {
        let wanted = args.only.is_empty()
            || args.only.iter().any(|only| {
                attack.id == only || attack.id.trim_end_matches(char::is_alphabetic) == only
            });
        if !wanted {
            continue;
        }
        eprintln!("attacks: {} {} ...", attack.id, attack.name);
        let row = attacks::run(attack, mode).await;
        eprintln!(
            "attacks: {} {}: {}",
            attack.id,
            if row.passed() { "pass" } else { "FAIL" },
            row.outcome.observed
        );
        rows.push(row);
    }

    println!("{}", header(mode, started.elapsed()));
    println!("{}", harness::table(&rows));
    let failed: Vec<&str> = rows
        .iter()
        .filter(|row| !row.passed())
        .map(|row| row.attack.as_str())
        .collect();
    if failed.is_empty() {
        println!("All {} attacks passed.", rows.len());
        ExitCode::SUCCESS
    } else {
        println!(
            "{} of {} attacks FAILED: {}",
            failed.len(),
            rows.len(),
            failed.join("; ")
        );
        ExitCode::FAILURE
    }
}

/// Whether `binary` is older than any file in framecast's `src/`, so that the suite would attack
/// code that is no longer there. (Building it from here instead would fight `cargo build
/// --workspace` over feature unification and rebuild half the dependency tree each time.)
fn is_stale(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|meta| meta.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut pending = vec![root.join("src")];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        } else if meta.modified().is_ok_and(|modified| modified > built) {
            return true;
        }
    }
    false
}

/// The lines above the table: machine, mode, binary, time taken.
fn header(mode: Mode, took: std::time::Duration) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let binary = match std::env::var_os("FRAMECAST_BIN") {
        Some(path) => PathBuf::from(path).display().to_string(),
        None => "target/release/framecast".into(),
    };
    let commit = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| {
            format!(
                " at commit {}",
                String::from_utf8_lossy(&output.stdout).trim()
            )
        })
        .unwrap_or_default();
    format!(
        "### Attack suite ({} form)\n\n\
         Machine: {cores} cores (nproc), Linux {}. Binary: `{binary}`{commit}. Every server runs \
         with `--bind 127.0.0.1:0 --test-pattern-fps {}` plus the flags shown; the healthy viewer \
         reads stream `default` from {} and must keep ≥ {} % of the frames published during the \
         attack. Total time {:.0} s.\n",
        if mode.long { "long" } else { "short" },
        kernel.trim(),
        harness::VIEWER_FPS,
        harness::VIEWER_IP,
        harness::VIEWER_MIN_KEPT * 100.0,
        took.as_secs_f64(),
    )
}
