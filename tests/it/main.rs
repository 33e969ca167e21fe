//! Integration tests: the real server on 127.0.0.1:0, driven by real clients over TCP.

mod common;
mod fake_camera;
mod nats;

mod access;
mod camera;
mod cluster;
mod cors;
mod deploy;
mod errors;
mod external;
mod fanout;
mod haproxy;
mod limits;
mod metrics;
mod outputs;
mod proxy;
mod replay;
mod several_streams;
mod shutdown;
mod slow_viewer;
mod startup;
mod tls;
mod tokens;
mod toolchain;
mod uploads;
mod variants;
mod wire;
