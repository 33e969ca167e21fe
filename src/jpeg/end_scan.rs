//! Finding images in a byte stream, for the splitters: where the next one starts, and, as its
//! bytes arrive, where it ends. The end is found by walking the image's structure (see
//! [`Markers`]), because a plain search for `FF D9` stops inside EXIF thumbnails.

use super::markers::{IMAGE_START, Markers, SOS, Token};

/// What [`EndScanner::scan`] found in the bytes it has been given so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The image is not finished yet.
    NeedMore,
    /// The image ends just before this offset (past its `FF D9`).
    End(usize),
    /// Another image starts (`FF D8`) at this offset before this one ended: this one is truncated.
    NewImage(usize),
    /// The structure is broken at this offset.
    Malformed(&'static str, usize),
}

/// Incremental end-of-image finder for one image whose `FF D8` is at offset 0 of the buffer.
///
/// The caller passes the image's bytes, growing between calls; the scanner remembers how far it
/// got, so finding the end costs time linear in the image size however the bytes are chunked.
#[derive(Debug, Clone)]
pub(crate) struct EndScanner {
    markers: Markers,
    /// Offset just past the first scan header: everything before it (APPn, EXIF thumbnails)
    /// was skipped by length and must not be searched for markers when resyncing.
    first_scan: Option<usize>,
}

impl EndScanner {
    /// Starts after the image's `FF D8`.
    pub(crate) fn new() -> Self {
        Self {
            markers: Markers::new(),
            first_scan: None,
        }
    }

    /// How many bytes are known to belong to the image (may exceed what has arrived).
    pub(crate) fn known_len(&self) -> usize {
        self.markers.known_len()
    }

    /// Where a resync may start searching: past the length-skipped header segments, which
    /// may run past the bytes that have arrived.
    pub(crate) fn resume_point(&self) -> usize {
        self.first_scan.unwrap_or(self.known_len())
    }

    /// The caller dropped the first `n` bytes of the image (they were examined already).
    pub(crate) fn rebase(&mut self, n: usize) {
        self.markers.rebase(n);
        self.first_scan = self.first_scan.map(|at| at.saturating_sub(n));
    }

    /// Continues the walk over `image`, which starts with the image's `FF D8`.
    pub(crate) fn scan(&mut self, image: &[u8]) -> Scan {
        loop {
            match self.markers.next(image) {
                Token::Segment { code, body } => {
                    if code == SOS {
                        self.first_scan.get_or_insert(body.end);
                    }
                }
                Token::EndOfImage(end) => return Scan::End(end),
                Token::StartOfImage(at) => return Scan::NewImage(at),
                Token::NeedMore(_) => return Scan::NeedMore,
                Token::Malformed(reason, at) => return Scan::Malformed(reason, at),
            }
        }
    }
}

/// Finds the first `FF D8 FF` in `bytes`.
pub(crate) fn find_image_start(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(IMAGE_START.len())
        .position(|w| w == IMAGE_START)
}

/// How many bytes at the end of `bytes` could be the start of an `FF D8 FF` that has not fully
/// arrived yet (kept when the rest is thrown away).
pub(crate) fn partial_image_start_len(bytes: &[u8]) -> usize {
    if bytes.ends_with(&IMAGE_START[..2]) {
        2
    } else if bytes.ends_with(&IMAGE_START[..1]) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{inspect, samples};

    #[test]
    fn ends_where_the_validator_ends_in_every_sample_flavour() {
        for image in [
            samples::sample_jpeg(16, 16, 1),
            samples::progressive_jpeg(16, 8, 2),
            samples::exif_thumbnail_jpeg(8, 8, 3),
            samples::restart_jpeg(16, 8, 4),
            samples::no_dht_jpeg(8, 16, 5),
        ] {
            let mut padded = image.clone();
            padded.extend_from_slice(&[0; 16]);
            assert_eq!(EndScanner::new().scan(&padded), Scan::End(image.len()));
            assert_eq!(inspect(&padded).unwrap().len, image.len());
        }
    }

    #[test]
    fn a_resync_skips_the_headers_where_an_exif_thumbnail_hides() {
        let image = samples::exif_thumbnail_jpeg(16, 16, 6);
        let thumbnail = find_image_start(&image[2..]).unwrap() + 2;
        let mut scanner = EndScanner::new();
        let sos = image.windows(2).rposition(|w| w == [0xFF, SOS]).unwrap();
        assert_eq!(scanner.scan(&image[..sos + 20]), Scan::NeedMore);
        assert!(scanner.resume_point() > thumbnail);
        assert!(scanner.resume_point() <= sos + 20);
    }

    #[test]
    fn a_partial_image_start_is_kept_until_it_can_be_told() {
        assert_eq!(find_image_start(b"ab\xFF\xD8\xFF\xD8\xFF"), Some(2));
        assert_eq!(find_image_start(b"\xFF\xD8\x00\xFF\xD8"), None);
        assert_eq!(partial_image_start_len(b"ab\xFF\xD8"), 2);
        assert_eq!(partial_image_start_len(b"ab\xFF"), 1);
        assert_eq!(partial_image_start_len(b"ab\xD8"), 0);
    }
}
