//! Asking every node at once: one NATS request, the answers that come within a window.
//!
//! A node does not know how many others there are, so it does not wait for a number of
//! answers: it takes those that arrive within a short window (bounded in count too) and goes
//! on. The other side answers every question on a subject until shutdown. `/streams`' census
//! and the numbering recall (`census.rs`, `sequence.rs`) are both built on these two.

use std::time::Duration;

use async_nats::{Message, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::Cluster;
use crate::shutdown::Shutdown;

impl Cluster {
    /// Asks `subject` and returns up to `most` answers' payloads received within `window`;
    /// none if NATS cannot be asked.
    pub(super) async fn ask_all(
        &self,
        subject: String,
        window: Duration,
        most: usize,
    ) -> Vec<Bytes> {
        let inbox = self.client.new_inbox();
        let Ok(mut answers) = self.client.subscribe(inbox.clone()).await else {
            return Vec::new();
        };
        if self
            .client
            .publish_with_reply(subject, inbox, Bytes::new())
            .await
            .is_err()
        {
            return Vec::new();
        }
        let until = Instant::now() + window;
        let mut payloads = Vec::new();
        while payloads.len() < most {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                answer = answers.next() => match answer {
                    Some(answer) => payloads.push(answer.payload),
                    None => break,
                },
            }
        }
        payloads
    }

    /// Until shutdown: answers each question on `subject` (wildcards allowed) with what
    /// `answer` makes of the subject it was asked on, if anything.
    pub(super) async fn answer_all(
        &self,
        subject: String,
        shutdown: Shutdown,
        answer: impl Fn(&Subject) -> Option<Bytes>,
    ) {
        let mut asked = match self.client.subscribe(subject.clone()).await {
            Ok(asked) => asked,
            Err(err) => {
                tracing::warn!(%subject, %err, "cannot answer the other nodes");
                return;
            }
        };
        loop {
            let question: Message = tokio::select! {
                () = shutdown.wait() => return,
                question = asked.next() => match question {
                    Some(question) => question,
                    None => return,
                },
            };
            let Some(reply) = question.reply else {
                continue;
            };
            if let Some(payload) = answer(&question.subject)
                && let Err(err) = self.client.publish(reply, payload).await
            {
                tracing::debug!(%subject, %err, "cannot answer another node");
            }
        }
    }
}
