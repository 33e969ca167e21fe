//! Leases: exactly one node runs each source, and another takes over when it dies.
//!
//! Every node is given the same `--source` flags, and every node's copy of a source stream
//! refuses pushed frames; but only the node holding the source's lease runs it. A lease is a
//! key in a JetStream key-value bucket whose entries expire after `--nats-lease`: a node
//! creates the key (which fails while another node holds it) and renews it every third of the
//! lease by updating it at the revision it last wrote. A node that dies stops renewing; its
//! key expires and the first node to create it again runs the source from then on. Frames
//! the old holder still sends after that cannot land out of order: each append names where
//! the log ended (see `sequence.rs`).
//!
//! While NATS is unreachable the holder keeps running its sources for its own viewers, and
//! once NATS answers again it renews — or, if NATS lost the bucket, takes the lease again.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{Cluster, wire};
use crate::hub::{Latest, Stream};
use crate::publish::Publisher;
use crate::shutdown::Shutdown;
use crate::source::Source;

/// Returns `true` once the lease `watch` follows is given up, `false` if the watch fails.
async fn given_up(watch: &mut kv::Watch) -> bool {
    while let Some(entry) = watch.next().await {
        match entry {
            Ok(entry) if entry.operation == kv::Operation::Put => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Longest wait to give a lease up when stopping; past it, the lease runs out by itself.
const RELEASE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a node stopped running a source.
enum Stop {
    /// The source finished by itself, or the server is stopping.
    Ended,
    /// Another node holds the lease now.
    Lost,
}

impl Cluster {
    /// Until shutdown: runs `source` through `publisher` whenever this node holds its lease.
    pub async fn run_source(
        self: Arc<Self>,
        source: Source,
        publisher: Publisher,
        shutdown: Shutdown,
    ) {
        let stream = publisher.stream().clone();
        let key = stream.name().to_string();
        loop {
            let revision = tokio::select! {
                () = shutdown.wait() => return,
                revision = self.take_lease(&key) => revision,
            };
            tracing::info!(stream = %key, node = %self.node, "this node runs the source now");
            self.set_running(&key, true);
            let stop = tokio::select! {
                () = source.clone().run(publisher.clone(), shutdown.clone()) => Stop::Ended,
                () = self.keep_lease(&key, revision) => Stop::Lost,
                never = self.export_status(&stream) => match never {},
            };
            self.set_running(&key, false);
            match stop {
                Stop::Ended => {
                    self.release(&key).await;
                    return;
                }
                Stop::Lost => {
                    tracing::warn!(stream = %key, "another node runs the source now");
                }
            }
        }
    }

    /// Waits until this node holds the lease on `key`; returns the revision it wrote.
    ///
    /// It tries again every third of the lease (a holder that died stops renewing, and its
    /// lease runs out), and at once when the holder gives the lease up as it stops.
    async fn take_lease(&self, key: &str) -> u64 {
        let mut holder = None;
        loop {
            match self.try_take(key).await {
                Ok(Some(revision)) => return revision,
                Ok(None) => {}
                Err(reason) => tracing::debug!(stream = %key, %reason, "cannot take the lease"),
            }
            if holder.is_none()
                && let Ok(leases) = self.leases().await
            {
                holder = leases.watch(key).await.ok();
            }
            let pause = tokio::time::sleep(self.lease / 3);
            match holder.as_mut() {
                Some(watch) => tokio::select! {
                    () = pause => {}
                    given_up = given_up(watch) => {
                        if !given_up {
                            holder = None;
                        }
                    }
                },
                None => pause.await,
            }
        }
    }

    /// Creates the lease on `key` for this node: its revision, or `None` if another node holds
    /// it.
    async fn try_take(&self, key: &str) -> Result<Option<u64>, String> {
        let leases = self.leases().await?;
        match leases.create(key, self.node_bytes()).await {
            Ok(revision) => Ok(Some(revision)),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    }

    /// Renews the lease on `key` every third of its length; returns once another node holds
    /// it. Never returns while NATS is unreachable: nobody else can take it then.
    async fn keep_lease(&self, key: &str, mut revision: u64) {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            let Ok(leases) = self.leases().await else {
                continue;
            };
            match leases.update(key, self.node_bytes(), revision).await {
                Ok(renewed) => revision = renewed,
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // The lease ran out (this node stalled) or NATS lost it: whose is it now?
                    match leases.entry(key).await {
                        Ok(Some(entry)) if entry.value == self.node_bytes() => {
                            revision = entry.revision;
                        }
                        Ok(Some(_)) => return,
                        Ok(None) => match self.try_take(key).await {
                            Ok(Some(taken)) => revision = taken,
                            Ok(None) => return,
                            Err(_) => {}
                        },
                        Err(_) => {}
                    }
                }
                Err(err) => {
                    tracing::debug!(stream = %key, %err, "cannot renew the lease");
                    if let Ok(Some(taken)) = self.try_take(key).await {
                        revision = taken;
                    }
                }
            }
        }
    }

    /// Gives the lease on `key` up, if this node still holds it, so that another node takes
    /// the source over at once rather than when the lease runs out.
    async fn release(&self, key: &str) {
        let released = tokio::time::timeout(RELEASE_TIMEOUT, async {
            let leases = self.leases().await.ok()?;
            let entry = leases.entry(key).await.ok()??;
            if entry.value != self.node_bytes() {
                return None;
            }
            leases
                .delete_expect_revision(key, Some(entry.revision))
                .await
                .ok()
        })
        .await;
        if let Ok(Some(())) = released {
            tracing::info!(stream = %key, "gave the source's lease up");
        }
    }

    /// Tells the other nodes each status the source here reports, and again now and then so
    /// that the log, which forgets old messages, always has it.
    async fn export_status(&self, stream: &Stream) -> std::convert::Infallible {
        let mut latest: watch::Receiver<Latest> = stream.watch();
        let mut told = None;
        let mut retell = tokio::time::interval(super::LOG_MAX_AGE / 4);
        loop {
            let status = latest.borrow_and_update().status.clone();
            if told.as_ref().is_none_or(|told| !Arc::ptr_eq(told, &status)) {
                let message = wire::StatusMessage {
                    node: self.node.clone(),
                    state: status.state,
                    reason: status.reason.clone(),
                };
                let payload = serde_json::to_vec(&message).expect("plain struct serializes");
                let subject = wire::status_subject(&self.prefix, stream.name());
                if let Err(err) = self.client.publish(subject, payload.into()).await {
                    tracing::debug!(stream = %stream.name(), %err, "cannot send the status");
                }
                told = Some(status);
            }
            tokio::select! {
                changed = latest.changed() => {
                    if changed.is_err() {
                        return std::future::pending().await;
                    }
                }
                _ = retell.tick() => told = None,
            }
        }
    }

    /// The lease bucket, made if NATS does not have it (first start, or a restart).
    ///
    /// A bucket is a JetStream stream with settings of its own; it is made here as a stream
    /// because the client's own way asks the server for account figures that nats-server 2.9
    /// (Debian's) does not report.
    async fn leases(&self) -> Result<kv::Store, String> {
        let bucket = format!("{}-leases", self.prefix);
        if let Ok(store) = self.jetstream.get_key_value(&bucket).await {
            return Ok(store);
        }
        self.jetstream
            .create_stream(stream::Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                max_age: self.lease,
                storage: stream::StorageType::Memory,
                discard: stream::DiscardPolicy::New,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|err| err.to_string())?;
        self.jetstream
            .get_key_value(&bucket)
            .await
            .map_err(|err| err.to_string())
    }

    /// What a lease held by this process holds.
    fn node_bytes(&self) -> Bytes {
        Bytes::from(self.instance.clone())
    }
}
