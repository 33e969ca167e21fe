//! The MJPEG framecast writes (`GET /mjpeg`): `multipart/x-mixed-replace`, one JPEG per part.
//!
//! Each part is written whole and already followed by the next delimiter, as µStreamer and
//! ffmpeg's `mpjpeg` muxer do: a browser shows a part once it sees the delimiter after it, so a
//! delimiter that waited for the next frame would show every picture one frame late. Each part
//! carries `Content-Length`, so a reader never has to scan the JPEG for the boundary.

use bytes::{BufMut, Bytes, BytesMut};

/// The boundary between parts; it cannot occur in a part's headers, and `Content-Length`
/// means nobody needs to look for it inside a JPEG.
pub const BOUNDARY: &str = "framecast-frame";
/// The Content-Type of the response.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=framecast-frame";
/// The first bytes of the body: the delimiter before the first part.
pub const OPENING: &[u8] = b"--framecast-frame\r\n";

/// One part: headers, the JPEG as it came, and the delimiter that closes it.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mjpeg::{Framing, Piece, Splitter};

    #[test]
    fn what_is_written_reads_back_through_the_splitter() {
        let jpeg = crate::jpeg::samples::sample_jpeg(32, 24, 1);
        let mut body = OPENING.to_vec();
        body.extend_from_slice(&part(&jpeg));
        body.extend_from_slice(&part(&jpeg));
        let mut splitter = Splitter::new(Framing::Multipart(Some(BOUNDARY.into())), 1 << 20);
        splitter.push(&body);
        assert_eq!(
            splitter.next_piece(),
            Some(Piece::Frame(jpeg.clone().into()))
        );
        assert_eq!(splitter.next_piece(), Some(Piece::Frame(jpeg.into())));
    }
}
