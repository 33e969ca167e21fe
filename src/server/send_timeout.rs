//! `SendTimeout`: a socket whose writes fail once it has accepted no bytes for too long.
//!
//! A viewer that stops reading (a frozen tab, a phone that lost its network without a reset)
//! fills its kernel send buffer; from then on its connection holds the one frame it was being
//! sent. Latest-frame-wins keeps that to one frame per viewer, but without a clock the frame is
//! held for as long as the TCP connection lives, which can be hours. With this wrapper a write
//! that stays blocked for the limit fails with `TimedOut`, the connection's task ends and the
//! frame is freed. Both the direct event-stream path and hyper write through it.
//!
//! A slow reader is not a stalled one: any progress, however small, starts the clock again.
//! The timer is only allocated the first time a write blocks, so a viewer that keeps up pays
//! nothing for it.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps a socket `S` so that its writes fail after `limit` without progress.
#[derive(Debug)]
pub struct SendTimeout<S> {
    inner: S,
    /// `Duration::ZERO` turns the timeout off.
    limit: Duration,
    /// Set while a write is blocked: fires `limit` after the write first blocked.
    blocked: Option<Pin<Box<Sleep>>>,
    /// Whether `blocked` is counting for the current wait (it is kept, disarmed, for reuse).
    armed: bool,
}

impl<S> SendTimeout<S> {
    /// Wraps `inner`; a `limit` of zero never times out.
    pub fn new(inner: S, limit: Duration) -> SendTimeout<S> {
        SendTimeout {
            inner,
            limit,
            blocked: None,
            armed: false,
        }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// What a write that returned `result` means once the clock is taken into account.
    fn check<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.armed = false;
            return result;
        }
        if self.limit.is_zero() {
            return Poll::Pending;
        }
        let deadline = Instant::now() + self.limit;
        let blocked = self
            .blocked
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            blocked.as_mut().reset(deadline);
            self.armed = true;
        }
        match blocked.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client accepted no bytes for {:?}", self.limit),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.check(result, cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes `total` bytes through a `SendTimeout` into a pipe of `pipe_bytes`, whose other
    /// end reads `read_per_step` bytes every `step`; returns how the write ended.
    async fn write_through(
        limit: Duration,
        read_per_step: usize,
        step: Duration,
    ) -> io::Result<()> {
        let (client, server) = tokio::io::duplex(1024);
        let mut socket = SendTimeout::new(server, limit);
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut buf = vec![0; read_per_step.max(1)];
            loop {
                tokio::time::sleep(step).await;
                if read_per_step > 0 && client.read(&mut buf).await.unwrap_or(0) == 0 {
                    break;
                }
            }
        });
        let result = socket.write_all(&[7; 64 * 1024]).await;
        reader.abort();
        result
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_is_cut_off_after_the_limit() {
        let started = Instant::now();
        let err = write_through(Duration::from_secs(30), 0, Duration::from_secs(1))
            .await
            .expect_err("a reader that never reads must time out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not() {
        // 64 KiB at 512 bytes every 10 s takes far longer than the 30 s limit, but no single
        // wait does.
        write_through(Duration::from_secs(30), 512, Duration::from_secs(10))
            .await
            .expect("slow progress is progress");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_limit_never_times_out() {
        let (_client, server) = tokio::io::duplex(16);
        let mut socket = SendTimeout::new(server, Duration::ZERO);
        let write = socket.write_all(&[0; 64]);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), write)
                .await
                .is_err(),
            "still blocked after an hour"
        );
    }
}
