//! `Frame`: one validated JPEG and what the server knows about it on arrival.
//!
//! Every source ends here: nothing reaches the hub without passing [`Frame::from_jpeg`], so a
//! corrupt or truncated picture is never broadcast, and neither is one that holds the MJPEG
//! output's boundary.

use std::time::SystemTime;

use bytes::Bytes;

use crate::jpeg::{self, JpegError};

/// A complete JPEG that passed validation. Cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The JPEG from SOI to EOI, exactly as received (padding after EOI is cut off).
    pub jpeg: Bytes,
    /// Width in pixels, from the JPEG header.
    pub width: u16,
    /// Height in pixels, from the JPEG header.
    pub height: u16,
    /// When the server received the frame (wall clock, for the `ts` field).
    pub received_at: SystemTime,
}

impl Frame {
    /// Validates `bytes` as one JPEG and stamps the receive time.
    pub fn from_jpeg(bytes: Bytes) -> Result<Frame, JpegError> {
        let info = jpeg::inspect(&bytes)?;
        // Browsers find MJPEG parts by the boundary alone (see `mjpeg::part`): a frame holding
        // it would be cut in two for every `/mjpeg` viewer. Only a made-up frame does.
        if memchr::memmem::find(&bytes[..info.len], crate::mjpeg::part::DELIMITER).is_some() {
            return Err(JpegError::HoldsBoundary);
        }
        Ok(Frame {
            jpeg: bytes.slice(..info.len),
            width: info.width,
            height: info.height,
            received_at: SystemTime::now(),
        })
    }

    /// The frame as received at `ts_ms` milliseconds since the Unix epoch: a frame another
    /// node received keeps that node's time.
    pub fn received_at_ms(mut self, ts_ms: u64) -> Frame {
        self.received_at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ts_ms);
        self
    }

    /// Receive time in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> u64 {
        self.received_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64)
    }
}
