//! The MJPEG framecast writes (`GET /mjpeg`): `multipart/x-mixed-replace`, one JPEG per part,
//! in one of two layouts, each part built once per frame for all the viewers of its layout.
//!
//! - **With lengths**, for tools (ffmpeg, VLC, Home Assistant's reader, scripts): each part
//!   has `Content-Type` and `Content-Length` headers, then the JPEG, then the delimiter that
//!   ends it, so a reader never has to look for the boundary inside a JPEG.
//! - **Headers ahead**, for browsers: Chromium draws a part only once it has read the *next*
//!   part's header block, not when the part or its delimiter is complete, so a part that waits
//!   for the next frame to be announced is drawn one frame late (a new `<img>` stays empty
//!   until the second frame; the last frame before a pause never shows). Here each JPEG is
//!   followed at once by the delimiter and the next part's headers. Those cannot hold a
//!   `Content-Length`, which is not known yet; browsers find parts by the boundary anyway.
//!
//! A frame that holds the boundary text would be cut in two by any reader that scans for it,
//! so such a frame never gets this far: [`crate::frame::Frame::from_jpeg`] refuses it.

use bytes::{BufMut, Bytes, BytesMut};

/// The boundary between parts.
pub const BOUNDARY: &str = "framecast-frame";
/// The delimiter line's text, which no frame may hold.
pub const DELIMITER: &[u8] = b"--framecast-frame";
/// The Content-Type of the response.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=framecast-frame";
/// The first bytes of a body with lengths: the delimiter before the first part.
pub const OPENING: &[u8] = b"--framecast-frame\r\n";
/// The first bytes of a body with headers ahead: the delimiter and the first part's headers.
pub const OPENING_AHEAD: &[u8] = b"--framecast-frame\r\nContent-Type: image/jpeg\r\n\r\n";

/// One part with lengths: headers, the JPEG as it came, and the delimiter that closes it.
pub fn part(jpeg: &[u8]) -> Bytes {
    let head = format!(
        "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    let mut part = BytesMut::with_capacity(head.len() + jpeg.len() + 2 + OPENING.len());
    part.put_slice(head.as_bytes());
    part.put_slice(jpeg);
    part.put_slice(b"\r\n");
    part.put_slice(OPENING);
    part.freeze()
}

/// One part with headers ahead: the JPEG as it came, then the delimiter and the headers of the
/// part after it.
pub fn part_ahead(jpeg: &[u8]) -> Bytes {
    let mut part = BytesMut::with_capacity(jpeg.len() + 2 + OPENING_AHEAD.len());
    part.put_slice(jpeg);
    part.put_slice(b"\r\n");
    part.put_slice(OPENING_AHEAD);
    part.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mjpeg::{Framing, Piece, Splitter};

    fn split(body: &[u8]) -> Vec<Piece> {
        let mut splitter = Splitter::new(Framing::Multipart(Some(BOUNDARY.into())), 1 << 20);
        splitter.push(body);
        std::iter::from_fn(|| splitter.next_piece()).collect()
    }

    #[test]
    fn both_layouts_read_back_through_the_splitter() {
        let jpeg = crate::jpeg::samples::sample_jpeg(32, 24, 1);
        let frame = Piece::Frame(jpeg.clone().into());
        let mut with_lengths = OPENING.to_vec();
        with_lengths.extend_from_slice(&part(&jpeg));
        with_lengths.extend_from_slice(&part(&jpeg));
        assert_eq!(split(&with_lengths), [frame.clone(), frame.clone()]);
        let mut ahead = OPENING_AHEAD.to_vec();
        ahead.extend_from_slice(&part_ahead(&jpeg));
        ahead.extend_from_slice(&part_ahead(&jpeg));
        assert_eq!(split(&ahead), [frame.clone(), frame]);
    }

    #[test]
    fn headers_ahead_end_each_part_with_the_next_header_block() {
        let part = part_ahead(b"\xFF\xD8jpeg\xFF\xD9");
        assert!(part.ends_with(b"\r\n--framecast-frame\r\nContent-Type: image/jpeg\r\n\r\n"));
        assert!(OPENING_AHEAD.starts_with(DELIMITER));
        assert_eq!(
            CONTENT_TYPE,
            format!("multipart/x-mixed-replace; boundary={BOUNDARY}")
        );
    }
}
