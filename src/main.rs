//! The `framecast` binary: reads the configuration, checks it, binds, and runs until SIGINT or
//! SIGTERM.
//!
//! Every startup error — a bad configuration, a source that cannot start, an address that
//! cannot be bound — is found before the first "listening" line, printed at once, and ends the
//! process with a non-zero status.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use framecast::App;
use framecast::config::{Config, LogFormat};
use framecast::shutdown::Shutdown;
use tracing_subscriber::EnvFilter;

/// Hard deadline after a shutdown signal: the process exits by then whatever is still open.
const EXIT_DEADLINE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_env("FRAMECAST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("framecast=info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Otherwise a closed stderr (`framecast 2>&1 | head`) makes every log call panic, and a
        // panic in the signal task would leave the process deaf to SIGTERM.
        .log_internal_errors(false)
        .with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => logs.with_ansi(use_colour()).init(),
        // One JSON object per line, the fields at the top level, for log collectors.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }

    let bind = config.bind.clone();
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let mut app = match App::new(config) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("framecast: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = app.join_cluster().await {
        eprintln!("framecast: {err:#}");
        return ExitCode::FAILURE;
    }
    let listeners = match framecast::server::bind(&bind).await {
        Ok(listeners) => listeners,
        Err(err) => {
            eprintln!("framecast: cannot listen: {err}");
            return ExitCode::FAILURE;
        }
    };
    for listener in &listeners {
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        // One line on stdout per address, for people and for scripts that started us on port 0.
        println!("framecast listening on {scheme}://{address}");
        tracing::info!(%address, "listening");
    }

    let shutdown = Shutdown::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let mut server = tokio::spawn(app.run(listeners, shutdown.clone()));

    // The server only returns early on an error; otherwise it runs until a signal.
    let finished = tokio::select! {
        () = shutdown.wait() => tokio::time::timeout(EXIT_DEADLINE, server).await,
        finished = &mut server => Ok(finished),
    };
    match finished {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(err))) => {
            tracing::error!(%err, "server failed");
            ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            tracing::error!(%err, "server task panicked");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("exit deadline passed with work still running");
            ExitCode::SUCCESS
        }
    }
}

/// Colour in logs only on a terminal, and never when `NO_COLOR` is set to anything.
fn use_colour() -> bool {
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    std::io::stderr().is_terminal() && !no_colour
}
/// Fires `shutdown` on the first SIGINT (Ctrl-C) or SIGTERM.
async fn stop_on_signal(shutdown: Shutdown) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    shutdown.trigger();
    tracing::info!("shutting down");
}
