//! Following: a node receives a stream's frames from the cluster while it has viewers of it.
//!
//! For every stream in this node's hub, a task waits until the stream has a viewer here, then
//! reads the stream's log with an ordered JetStream consumer that starts at the newest frame
//! and status, so the first viewer gets a picture at once rather than at the next frame. Each
//! frame is published here under the number it came with; one this node already has (its own,
//! coming back) is dropped by that number. A few seconds after the last viewer leaves (a
//! reload finds the stream still followed), the consumer is deleted, and with it every byte of
//! that stream this node was receiving.
//!
//! The tasks hold streams weakly, so following never keeps a stream alive; a task ends when
//! its stream is removed from the hub.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{Cluster, wire};
use crate::hub::{Hub, Stream};
use crate::shutdown::Shutdown;
use crate::status::State;
use crate::stream_name::StreamName;

/// Pause before following a stream again after the consumer failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long a stream is still followed after its last viewer here left: a page reloaded, or
/// viewers coming and going, find the newest frame here and cost NATS no new consumer.
pub const FOLLOW_LINGER: Duration = Duration::from_secs(3);
/// Longest wait to delete a consumer no longer needed (else NATS drops it after 30 s idle).
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// Until shutdown: starts following each stream of `hub` as it is made.
pub(super) async fn follow_watched(cluster: Arc<Cluster>, hub: Arc<Hub>, shutdown: Shutdown) {
    let mut streams = hub.new_streams();
    loop {
        let stream = tokio::select! {
            () = shutdown.wait() => return,
            stream = streams.recv() => match stream {
                Some(stream) => stream,
                None => return,
            },
        };
        let Some(stream) = stream.upgrade() else {
            continue;
        };
        let follower = Follower {
            cluster: cluster.clone(),
            name: stream.name().clone(),
            viewers: stream.subscriber_count(),
            stream: Arc::downgrade(&stream),
        };
        tokio::spawn(follower.run(shutdown.clone()));
    }
}

/// One stream followed for this node's viewers.
struct Follower {
    cluster: Arc<Cluster>,
    name: StreamName,
    /// The stream's viewers here; closed when the stream is removed.
    viewers: watch::Receiver<usize>,
    stream: Weak<Stream>,
}

impl Follower {
    async fn run(mut self, shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                watched = self.viewers.wait_for(|count| *count > 0) => {
                    if watched.is_err() {
                        return;
                    }
                }
            }
            let followed = tokio::select! {
                () = shutdown.wait() => return,
                followed = self.follow() => followed,
            };
            match followed {
                Ok(Followed::Unwatched) => {}
                Ok(Followed::Removed) => return,
                Err(reason) => {
                    // While NATS is away, the connection's own warning has said it all.
                    if self.cluster.is_connected() {
                        tracing::warn!(stream = %self.name, %reason, "cannot follow the stream in the cluster");
                    } else {
                        tracing::debug!(stream = %self.name, %reason, "cannot follow the stream in the cluster");
                    }
                    tokio::select! {
                        () = shutdown.wait() => return,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
    }

    /// Publishes the stream's frames and statuses here until its viewers here have left.
    async fn follow(&mut self) -> Result<Followed, String> {
        let log = self
            .cluster
            .ensure_log()
            .await
            .map_err(|err| err.to_string())?;
        let consumer = log
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.cluster.client.new_inbox(),
                filter_subject: wire::stream_subjects(&self.cluster.prefix, &self.name),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|err| err.to_string())?;
        let _delete = Delete {
            log: log.clone(),
            name: consumer.cached_info().name.clone(),
        };
        let mut messages = consumer.messages().await.map_err(|err| err.to_string())?;
        tracing::debug!(stream = %self.name, "following the stream in the cluster");
        let mut connection = self.cluster.connection();
        // While the stream has no viewer here: when following stops, and the stream, held so
        // that the hub keeps it (and its newest frame) until then.
        let mut lingering: Option<(Instant, Arc<Stream>)> = None;
        self.viewers.mark_changed();
        loop {
            let linger_over = lingering.as_ref().map(|(until, _)| *until);
            let message = tokio::select! {
                changed = self.viewers.changed() => {
                    if changed.is_err() {
                        return Ok(Followed::Removed);
                    }
                    if *self.viewers.borrow_and_update() > 0 {
                        lingering = None;
                    } else if lingering.is_none() {
                        let Some(stream) = self.stream.upgrade() else {
                            return Ok(Followed::Removed);
                        };
                        lingering = Some((Instant::now() + FOLLOW_LINGER, stream));
                    }
                    continue;
                }
                () = sleep_until_some(linger_over) => return Ok(Followed::Unwatched),
                Ok(()) = connection.changed() => None,
                message = messages.next() => Some(message),
            };
            let Some(message) = message else {
                // The consumer carries on once NATS is back; until then viewers are told.
                if !*connection.borrow_and_update() {
                    self.cut_off();
                }
                continue;
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Err(err.to_string()),
                None => return Err("the consumer ended".into()),
            };
            let Some(stream) = self.stream.upgrade() else {
                return Ok(Followed::Removed);
            };
            let message = message.message;
            match wire::read(&message.subject, message.headers.as_ref(), message.payload) {
                Ok(wire::Entry::Frame(frame, seq)) => {
                    stream.publish_numbered(&frame, seq);
                }
                Ok(wire::Entry::Status(status)) => {
                    // Where the source runs, it tells its own status, and the log may still
                    // hold the previous holder's.
                    if !self.cluster.runs(self.name.as_str()) {
                        stream.set_status(status.state, status.reason.as_deref());
                        self.cluster.set_owner(self.name.as_str(), &status.node);
                    }
                }
                Err(reason) => {
                    stream.record_rejected();
                    tracing::debug!(stream = %self.name, %reason, "message from the cluster refused");
                }
            }
        }
    }
}

/// Deletes a consumer in NATS when dropped, in the background.
struct Delete {
    log: async_nats::jetstream::stream::Stream,
    name: String,
}

impl Drop for Delete {
    fn drop(&mut self) {
        let (log, name) = (self.log.clone(), std::mem::take(&mut self.name));
        tokio::spawn(async move {
            let _ = tokio::time::timeout(DELETE_TIMEOUT, log.delete_consumer(&name)).await;
        });
    }
}

impl Cluster {
    /// Brings `stream` here up to the newest frame in its log, for a one-off reader (a
    /// snapshot) on a node that may not follow it. Returns whether the cluster has a frame of
    /// it at all; a failure to ask counts as no.
    pub async fn catch_up(&self, stream: &Stream) -> bool {
        let subject = wire::frame_subject(&self.prefix, stream.name());
        let newest = match self.ensure_log().await {
            Ok(log) => log.get_last_raw_message_by_subject(&subject).await,
            Err(_) => return false,
        };
        let Ok(message) = newest else {
            return false;
        };
        match wire::read(&subject, Some(&message.headers), message.payload) {
            Ok(wire::Entry::Frame(frame, seq)) => {
                stream.publish_numbered(&frame, seq);
                true
            }
            _ => false,
        }
    }
}

impl Follower {
    /// Tells the stream's viewers here that frames from other nodes cannot reach them now.
    fn cut_off(&self) {
        if let Some(stream) = self.stream.upgrade()
            && stream.state() == State::Live
        {
            stream.set_status(State::Stalled, Some("lost the cluster connection (NATS)"));
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Why following stopped.
enum Followed {
    /// The last viewer here left, [`FOLLOW_LINGER`] ago.
    Unwatched,
    /// The stream is gone from the hub.
    Removed,
}
