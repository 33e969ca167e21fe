//! On demand: a camera is connected only while someone watches, plus a linger time.
//!
//! Many cameras allow few connections and some wake up or record when streamed, so a camera
//! nobody watches is left alone. The linger keeps a page reload from costing a reconnect.

use std::time::Duration;

use tokio::sync::watch;

/// Returns once the stream has at least one subscriber.
pub async fn viewers_arrive(subscribers: &mut watch::Receiver<usize>) {
    if subscribers.wait_for(|count| *count > 0).await.is_err() {
        // The stream is gone, so no viewer can come.
        std::future::pending::<()>().await;
    }
}

/// Returns once the stream has had no subscriber for `linger` without a break.
pub async fn viewers_gone_for(mut subscribers: watch::Receiver<usize>, linger: Duration) {
    loop {
        if subscribers.wait_for(|count| *count == 0).await.is_err() {
            return;
        }
        let back = tokio::time::timeout(linger, subscribers.wait_for(|count| *count > 0)).await;
        if back.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn linger_restarts_when_a_viewer_comes_back() {
        let (count, subscribers) = watch::channel(1usize);
        let gone = tokio::spawn(viewers_gone_for(subscribers, Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!gone.is_finished(), "a viewer is still there");
        count.send_replace(0);
        tokio::time::sleep(Duration::from_secs(20)).await;
        count.send_replace(1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        count.send_replace(0);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(
            !gone.is_finished(),
            "the linger restarted when the viewer left again"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(gone.is_finished());
    }
}
