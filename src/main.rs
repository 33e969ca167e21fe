//! The `framecast` binary: reads the configuration, binds, and runs until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use framecast::config::Config;
use framecast::shutdown::Shutdown;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Hard deadline after a shutdown signal: the process exits by then whatever is still open.
const EXIT_DEADLINE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Otherwise a closed stderr (`framecast 2>&1 | head`) makes every log call panic, and a
        // panic in the signal task would leave the process deaf to SIGTERM.
        .log_internal_errors(false)
        .with_env_filter(
            EnvFilter::try_from_env("FRAMECAST_LOG")
                .unwrap_or_else(|_| EnvFilter::new("framecast=info")),
        )
        .init();

    let listener = match TcpListener::bind(config.bind).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(%err, bind = %config.bind, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let address = listener
        .local_addr()
        .expect("a bound socket has an address");
    // One line on stdout, for people and for scripts that started us on port 0.
    println!("framecast listening on http://{address}");
    tracing::info!(%address, "listening");

    let shutdown = Shutdown::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let server = tokio::spawn(framecast::run(listener, config, shutdown.clone()));

    shutdown.wait().await;
    match tokio::time::timeout(EXIT_DEADLINE, server).await {
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
