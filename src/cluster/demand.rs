//! Demand: how many viewers want a source's stream across the cluster.
//!
//! A camera is connected while someone watches it and a linger time after, and in a cluster
//! that someone may be on any node. Each node with viewers of a source's stream says so on
//! `PREFIX-demand.NAME` (plain NATS, not kept) when its count changes and every third of the
//! lease while it is not zero; every node adds what it hears from the others to its own count.
//! A node that stops saying so (it died) is forgotten after a lease.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::Cluster;
use crate::hub::Stream;
use crate::shutdown::Shutdown;

/// One node's viewers of one stream.
#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    /// The announcing process ([`Cluster::instance`](super::Cluster)).
    node: String,
    viewers: usize,
}

impl Cluster {
    /// Viewers of `stream` on every node, updated as they come and go, until shutdown.
    pub fn demand(self: &Arc<Self>, stream: &Stream, shutdown: Shutdown) -> watch::Receiver<usize> {
        let local = stream.subscriber_count();
        let (total, receiver) = watch::channel(*local.borrow());
        let subject = super::wire::demand_subject(&self.prefix, stream.name());
        tokio::spawn(self.clone().track_demand(subject, local, total, shutdown));
        receiver
    }

    async fn track_demand(
        self: Arc<Self>,
        subject: String,
        mut local: watch::Receiver<usize>,
        total: watch::Sender<usize>,
        shutdown: Shutdown,
    ) {
        let mut heard = match self.client.subscribe(subject.clone()).await {
            Ok(heard) => heard,
            Err(err) => {
                tracing::warn!(%subject, %err, "cannot hear other nodes' viewers");
                return;
            }
        };
        let mut others: HashMap<String, (usize, Instant)> = HashMap::new();
        let mut ticks = tokio::time::interval(self.lease / 3);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut told = 0;
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                changed = local.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let viewers = *local.borrow_and_update();
                    if viewers != told {
                        self.announce(&subject, viewers).await;
                        told = viewers;
                    }
                }
                _ = ticks.tick() => {
                    if told > 0 {
                        self.announce(&subject, told).await;
                    }
                    others.retain(|_, (_, at)| at.elapsed() < self.lease);
                }
                message = heard.next() => {
                    let Some(message) = message else { return };
                    match serde_json::from_slice::<Announcement>(&message.payload) {
                        Ok(said) if said.node == self.instance => {}
                        Ok(said) if said.viewers == 0 => {
                            others.remove(&said.node);
                        }
                        Ok(said) => {
                            others.insert(said.node, (said.viewers, Instant::now()));
                        }
                        Err(err) => tracing::debug!(%subject, %err, "not a demand message"),
                    }
                }
            }
            let sum = *local.borrow() + others.values().map(|(viewers, _)| viewers).sum::<usize>();
            total.send_if_modified(|total| std::mem::replace(total, sum) != sum);
        }
    }

    async fn announce(&self, subject: &str, viewers: usize) {
        let said = Announcement {
            node: self.instance.clone(),
            viewers,
        };
        let payload = serde_json::to_vec(&said).expect("plain struct serializes");
        if let Err(err) = self
            .client
            .publish(subject.to_owned(), payload.into())
            .await
        {
            tracing::debug!(%subject, %err, "cannot tell other nodes about viewers");
        }
    }
}
