//! `Metrics`: what `GET /metrics` reports, in the Prometheus text format.
//!
//! Nothing is added to the frame path for it. Values come two ways:
//!
//! - **Read when scraped** from what the server counts anyway: each stream's counters, state,
//!   newest frame's age and subscribers by output, the open connections and viewers, uploads
//!   in progress. That is one pass over the streams, never over the subscribers, so a scrape
//!   costs the same with ten viewers or ten thousand.
//! - **Counted as they happen**, here: HTTP responses by route and status, connections
//!   accepted and refused, uploads by result. Each is once per request or connection.
//!
//! Names follow Prometheus' conventions (`framecast_` prefix, `_total` counters, seconds and
//! bytes), and every label's values are bounded: stream names by `--max-streams` and
//! `--max-waiting-streams`, routes by the router's fixed paths (anything else is `other`),
//! statuses by the codes framecast answers with, widths by `--variant-widths`.
//!
//! The text format (0.0.4) rather than OpenMetrics, because that is what `promtool check
//! metrics` reads and every Prometheus scrapes.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio_util::task::TaskTracker;

use crate::hub::{Hub, Output, StreamSummary};
use crate::status::State;

/// The media type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The routes responses are counted under; any other path is counted as `other`, so a client
/// cannot make up label values.
const ROUTES: [&str; 8] = [
    "/",
    "/events",
    "/mjpeg",
    "/snapshot",
    "/streams",
    "/healthz",
    "/frames",
    "/metrics",
];

/// The route label for a request to `path`: one of the router's paths, or `other`.
pub fn route(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|route| **route == path)
        .copied()
        .unwrap_or("other")
}

/// How an upload ended, for `framecast_uploads_total`.
#[derive(Debug, Clone, Copy)]
pub enum UploadResult {
    /// It published at least one frame and ended well.
    Published,
    /// It was refused or failed (see the response's status).
    Failed,
}

/// The counters kept as things happen, and the server's open connections.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    responses: IntCounterVec,
    connections_accepted: IntCounter,
    connections_refused: IntCounter,
    uploads: IntCounterVec,
    /// The accept loop's open connections, counted by the loop itself.
    pub connections: TaskTracker,
    started: SystemTime,
}

/// What the HTTP layer knows that the hub does not, read at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct HttpGauges {
    /// Open `/events` and `/mjpeg` responses.
    pub viewers: usize,
    /// Uploads in progress.
    pub uploads: usize,
    /// Bytes those uploads buffer.
    pub upload_buffer_bytes: usize,
}

/// A cluster node's link to NATS, read when scraped.
#[derive(Debug, Clone, Copy)]
pub struct ClusterGauges {
    /// Whether NATS is reachable now.
    pub connected: bool,
    /// Bytes received from NATS so far: frames of followed streams, and little else.
    pub received_bytes: u64,
    /// Bytes sent to NATS so far: frames appended, and little else.
    pub sent_bytes: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every counter at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let responses = IntCounterVec::new(
            Opts::new(
                "framecast_http_responses_total",
                "HTTP responses, by route and status.",
            ),
            &["route", "status"],
        )
        .expect("a valid metric");
        let connections_accepted = IntCounter::new(
            "framecast_connections_accepted_total",
            "TCP connections accepted and served.",
        )
        .expect("a valid metric");
        let connections_refused = IntCounter::new(
            "framecast_connections_refused_total",
            "TCP connections refused because --max-connections were open.",
        )
        .expect("a valid metric");
        let uploads = IntCounterVec::new(
            Opts::new(
                "framecast_uploads_total",
                "Uploads (POST /frames) that have ended, by result: published or failed.",
            ),
            &["result"],
        )
        .expect("a valid metric");
        for collector in [&responses, &uploads] {
            registry
                .register(Box::new(collector.clone()))
                .expect("registered once");
        }
        for collector in [&connections_accepted, &connections_refused] {
            registry
                .register(Box::new(collector.clone()))
                .expect("registered once");
        }
        Metrics {
            registry,
            responses,
            connections_accepted,
            connections_refused,
            uploads,
            connections: TaskTracker::new(),
            started: SystemTime::now(),
        }
    }

    /// Counts a response to a request for `route` (see [`route`]).
    pub fn record_response(&self, route: &'static str, status: StatusCode) {
        self.responses
            .with_label_values(&[route, status.as_str()])
            .inc();
    }

    /// Counts a connection taken by the accept loop.
    pub fn record_accepted(&self) {
        self.connections_accepted.inc();
    }

    /// Counts a connection refused for want of room.
    pub fn record_refused(&self) {
        self.connections_refused.inc();
    }

    /// Counts an upload that has ended.
    pub fn record_upload(&self, result: UploadResult) {
        let result = match result {
            UploadResult::Published => "published",
            UploadResult::Failed => "failed",
        };
        self.uploads.with_label_values(&[result]).inc();
    }

    /// Every metric, in the text format.
    pub fn render(&self, hub: &Hub, http: HttpGauges, cluster: Option<ClusterGauges>) -> String {
        let mut families = self.registry.gather();
        families.extend(process_families(self.started, self.connections.len(), http));
        families.extend(cluster.map(cluster_families).unwrap_or_default());
        families.extend(hub_families(hub));
        families.retain(|family| !family.get_metric().is_empty());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut text = String::new();
        if let Err(err) = TextEncoder::new().encode_utf8(&families, &mut text) {
            // Only a malformed family can fail, and the tests render every one.
            tracing::error!(%err, "could not encode the metrics");
        }
        text
    }
}

/// Metric families made for one scrape and dropped after it.
#[derive(Default)]
struct Scrape(Vec<MetricFamily>);

impl Scrape {
    fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        samples: impl IntoIterator<Item = (Vec<&'a str>, f64)>,
    ) {
        let vec = GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
        for (values, value) in samples {
            vec.with_label_values(&values).set(value);
        }
        self.0.extend(vec.collect());
    }

    fn counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        samples: impl IntoIterator<Item = (Vec<&'a str>, u64)>,
    ) {
        let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
        for (values, value) in samples {
            vec.with_label_values(&values).inc_by(value);
        }
        self.0.extend(vec.collect());
    }

    fn int_gauge(&mut self, name: &str, help: &str, value: usize) {
        let vec = IntGaugeVec::new(Opts::new(name, help), &[]).expect("a valid metric");
        vec.with_label_values(&[] as &[&str])
            .set(i64::try_from(value).unwrap_or(i64::MAX));
        self.0.extend(vec.collect());
    }
}

/// The node's link to its cluster.
fn cluster_families(cluster: ClusterGauges) -> Vec<MetricFamily> {
    let mut scrape = Scrape::default();
    scrape.int_gauge(
        "framecast_cluster_connected",
        "1 while NATS is reachable, 0 while this node serves only its own streams.",
        usize::from(cluster.connected),
    );
    scrape.counter(
        "framecast_cluster_received_bytes_total",
        "Bytes received from NATS: frames of streams watched here that other nodes took in.",
        &[],
        [(vec![], cluster.received_bytes)],
    );
    scrape.counter(
        "framecast_cluster_sent_bytes_total",
        "Bytes sent to NATS: frames this node took in.",
        &[],
        [(vec![], cluster.sent_bytes)],
    );
    scrape.0
}

/// The server as a whole: build, start time, connections, viewers, uploads.
fn process_families(
    started: SystemTime,
    connections: usize,
    http: HttpGauges,
) -> Vec<MetricFamily> {
    let mut scrape = Scrape::default();
    scrape.gauge(
        "framecast_build_info",
        "Always 1; the version is a label.",
        &["version"],
        [(vec![env!("CARGO_PKG_VERSION")], 1.0)],
    );
    let started = started
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    scrape.gauge(
        "framecast_start_time_seconds",
        "When the server started, in seconds since the Unix epoch.",
        &[],
        [(vec![], started)],
    );
    scrape.int_gauge(
        "framecast_connections",
        "Open TCP connections.",
        connections,
    );
    scrape.int_gauge(
        "framecast_viewers",
        "Open /events and /mjpeg responses, whatever streams they carry.",
        http.viewers,
    );
    scrape.int_gauge(
        "framecast_uploads",
        "Uploads (POST /frames) in progress.",
        http.uploads,
    );
    scrape.int_gauge(
        "framecast_upload_buffer_bytes",
        "Bytes buffered by uploads in progress.",
        http.upload_buffer_bytes,
    );
    scrape.0
}

/// Every stream's counters, state and subscribers.
fn hub_families(hub: &Hub) -> Vec<MetricFamily> {
    let streams = hub.summary();
    let mut scrape = Scrape::default();
    scrape.int_gauge(
        "framecast_streams",
        "Streams that exist now.",
        streams.len(),
    );
    let each = |value: fn(&StreamSummary) -> u64| {
        streams
            .iter()
            .map(move |stream| (vec![stream.name.as_str()], value(stream)))
    };
    scrape.counter(
        "framecast_frames_published_total",
        "Frames published (validated, numbered and encoded once).",
        &["stream"],
        each(|stream| stream.published),
    );
    scrape.counter(
        "framecast_frames_rejected_total",
        "Frames refused: not a JPEG, truncated, too large.",
        &["stream"],
        each(|stream| stream.rejected),
    );
    scrape.counter(
        "framecast_frames_skipped_total",
        "Frames subscribers skipped because they were behind, summed over all of them.",
        &["stream"],
        each(|stream| stream.skipped),
    );
    scrape.counter(
        "framecast_source_reconnects_total",
        "Times a stream's source tried again after a failure (a camera reconnecting).",
        &["stream"],
        each(|stream| stream.reconnects),
    );
    let by_output = |value: fn(&crate::hub::OutputSummary) -> u64| {
        streams.iter().flat_map(move |stream| {
            Output::ALL.into_iter().map(move |output| {
                (
                    vec![stream.name.as_str(), output.as_str()],
                    value(&stream.outputs.get(output)),
                )
            })
        })
    };
    scrape.gauge(
        "framecast_subscribers",
        "Subscribers now, by stream and output (sse, mjpeg, snapshot waiting for a frame).",
        &["stream", "output"],
        by_output(|output| output.subscribers as u64).map(|(labels, n)| (labels, n as f64)),
    );
    scrape.counter(
        "framecast_frames_sent_total",
        "Frames sent to subscribers, by stream and output.",
        &["stream", "output"],
        by_output(|output| output.frames),
    );
    scrape.counter(
        "framecast_sent_bytes_total",
        "Bytes of the frames sent (SSE events, MJPEG parts, snapshot JPEGs), by stream and output.",
        &["stream", "output"],
        by_output(|output| output.bytes),
    );
    const STATES: [State; 4] = [
        State::Connecting,
        State::Live,
        State::Stalled,
        State::Offline,
    ];
    scrape.gauge(
        "framecast_stream_state",
        "1 for the state each stream's source is in, 0 for the others.",
        &["stream", "state"],
        streams.iter().flat_map(|stream| {
            STATES.into_iter().map(move |state| {
                let value = if stream.state == state { 1.0 } else { 0.0 };
                (vec![stream.name.as_str(), state.as_str()], value)
            })
        }),
    );
    scrape.gauge(
        "framecast_frame_age_seconds",
        "Time since each stream's newest frame was received (streams with a frame).",
        &["stream"],
        streams.iter().filter_map(|stream| {
            let age = stream.age_ms? as f64 / 1000.0;
            Some((vec![stream.name.as_str()], age))
        }),
    );
    let widths: Vec<(String, String, u64, u64)> = streams
        .iter()
        .flat_map(|stream| {
            stream.variants.iter().map(|variant| {
                let width = variant.width.to_string();
                (stream.name.clone(), width, variant.scaled, variant.failed)
            })
        })
        .collect();
    scrape.counter(
        "framecast_variant_frames_scaled_total",
        "Frames scaled for a variant (?width=), once each however many watch it.",
        &["stream", "width"],
        widths
            .iter()
            .map(|(stream, width, scaled, _)| (vec![stream.as_str(), width.as_str()], *scaled)),
    );
    scrape.counter(
        "framecast_variant_frames_failed_total",
        "Frames a variant could not scale.",
        &["stream", "width"],
        widths
            .iter()
            .map(|(stream, width, _, failed)| (vec![stream.as_str(), width.as_str()], *failed)),
    );
    scrape.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use crate::hub::SourceKind;
    use crate::stream_name::StreamName;

    fn name(name: &str) -> StreamName {
        StreamName::parse(Some(name)).unwrap()
    }

    fn gauges() -> HttpGauges {
        HttpGauges {
            viewers: 1,
            uploads: 0,
            upload_buffer_bytes: 0,
        }
    }

    #[tokio::test]
    async fn streams_and_counters_are_rendered_with_bounded_labels() {
        let hub = Hub::new(4, 8);
        let stream = hub.publisher(&name("door"), SourceKind::Push).unwrap();
        let jpeg = crate::jpeg::samples::sample_jpeg(32, 16, 1);
        stream.publish(&Frame::from_jpeg(jpeg.into()).unwrap());
        let _viewer = hub.subscribe(&name("door"), None, Output::Mjpeg).unwrap();
        let metrics = Metrics::new();
        metrics.record_response(route("/events"), StatusCode::OK);
        metrics.record_response(route("/../made-up"), StatusCode::NOT_FOUND);
        metrics.record_upload(UploadResult::Published);
        let text = metrics.render(&hub, gauges(), None);
        for line in [
            "framecast_frames_published_total{stream=\"door\"} 1",
            "framecast_subscribers{output=\"mjpeg\",stream=\"door\"} 1",
            "framecast_subscribers{output=\"sse\",stream=\"door\"} 0",
            "framecast_stream_state{state=\"live\",stream=\"door\"} 1",
            "framecast_http_responses_total{route=\"/events\",status=\"200\"} 1",
            "framecast_http_responses_total{route=\"other\",status=\"404\"} 1",
            "framecast_uploads_total{result=\"published\"} 1",
            "framecast_viewers 1",
            "framecast_streams 1",
            "# TYPE framecast_frames_sent_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(!text.contains("made-up"));
    }
}
