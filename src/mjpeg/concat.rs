//! Concatenated JPEGs (`ffmpeg -f mjpeg`, camera dumps, files): each image ends where its
//! structure says ([`EndScanner`]), because a plain `FF D8`/`FF D9` search cuts frames at EXIF
//! thumbnails; junk between images is dropped up to the next start of image.

use bytes::{Buf, BytesMut};

use super::{Piece, oversize};
use crate::jpeg::{EndScanner, Scan, find_image_start, partial_image_start_len};

/// Where the splitter is.
#[derive(Debug)]
enum State {
    /// Between images: throwing bytes away until `FF D8 FF`.
    Seek,
    /// Inside an image that starts at offset 0 of the buffer.
    Image {
        scanner: EndScanner,
        /// Already reported as oversize: its bytes are dropped as they are walked.
        discarding: bool,
        /// Bytes of this image dropped so far while discarding.
        dropped: usize,
    },
}

/// Splits a stream of back-to-back JPEGs into one piece per image.
#[derive(Debug)]
pub(crate) struct ConcatSplitter {
    buf: BytesMut,
    max_frame_bytes: usize,
    state: State,
    eof: bool,
}

impl ConcatSplitter {
    pub(crate) fn new(max_frame_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_frame_bytes,
            state: State::Seek,
            eof: false,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn finish(&mut self) -> Option<Piece> {
        self.eof = true;
        self.next_piece()
    }

    pub(crate) fn next_piece(&mut self) -> Option<Piece> {
        loop {
            match &mut self.state {
                State::Seek => match find_image_start(&self.buf) {
                    Some(at) => {
                        self.buf.advance(at);
                        self.state = image_state();
                    }
                    None => {
                        let keep = if self.eof {
                            0
                        } else {
                            partial_image_start_len(&self.buf)
                        };
                        self.buf.advance(self.buf.len() - keep);
                        return None;
                    }
                },
                State::Image {
                    scanner,
                    discarding: discard_flag,
                    dropped,
                } => {
                    let discarding = *discard_flag;
                    // The verdict on a frame depends on its first `max_frame_bytes` only, so it
                    // is the same however the stream was chunked; a discarded one is walked
                    // to its end.
                    let visible = if discarding {
                        self.buf.len()
                    } else {
                        self.buf.len().min(self.max_frame_bytes)
                    };
                    match scanner.scan(&self.buf[..visible]) {
                        Scan::End(end) => {
                            self.state = State::Seek;
                            if discarding {
                                self.buf.advance(end);
                                continue;
                            }
                            return Some(Piece::Frame(self.buf.split_to(end).freeze()));
                        }
                        Scan::NewImage(at) => {
                            self.buf.advance(at);
                            self.state = image_state();
                            if !discarding {
                                return Some(Piece::Rejected(
                                    "truncated: next image began before end-of-image marker".into(),
                                ));
                            }
                        }
                        Scan::Malformed(reason, at) => {
                            self.buf.advance(at);
                            self.state = State::Seek;
                            if !discarding {
                                return Some(Piece::Rejected(format!("malformed: {reason}")));
                            }
                        }
                        Scan::NeedMore => {
                            let seen = scanner.known_len().max(self.buf.len());
                            let report = !discarding && *dropped + seen > self.max_frame_bytes;
                            if discarding || report {
                                // Drop what the scanner has walked; keep its place.
                                let n = scanner.known_len().min(self.buf.len());
                                self.buf.advance(n);
                                scanner.rebase(n);
                                *dropped += n;
                            }
                            if report {
                                *discard_flag = true;
                                return Some(oversize(self.max_frame_bytes));
                            }
                            if self.eof {
                                self.buf.clear();
                                self.state = State::Seek;
                                return (!discarding).then(|| {
                                    Piece::Rejected(
                                        "truncated: stream ended before end-of-image marker".into(),
                                    )
                                });
                            }
                            return None;
                        }
                    }
                }
            }
        }
    }
}

fn image_state() -> State {
    State::Image {
        scanner: EndScanner::new(),
        discarding: false,
        dropped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{self, samples};
    use crate::mjpeg::Framing;
    use crate::mjpeg::tests::{frames, rejections, split, split_everywhere};
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;
    const FFMPEG_MJPEG: &[u8] = include_bytes!("../../tests/fixtures/ffmpeg-160x120.mjpeg");

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// A mix of every kind of frame the walker must get through.
    fn assorted() -> Vec<Vec<u8>> {
        vec![
            samples::sample_jpeg(16, 16, 1),
            samples::progressive_jpeg(16, 8, 2),
            samples::exif_thumbnail_jpeg(8, 8, 3),
            samples::restart_jpeg(16, 8, 4),
            samples::no_dht_jpeg(8, 16, 5),
        ]
    }

    #[test]
    fn assorted_frames_split_at_every_byte() {
        let input = assorted();
        let pieces = split_everywhere(&Framing::Concatenated, MAX, &input.concat());
        assert_eq!(frames(&pieces), input);
        assert!(rejections(&pieces).is_empty());
    }

    #[test]
    fn exif_thumbnail_does_not_split_the_frame() {
        let jpeg = samples::exif_thumbnail_jpeg(16, 16, 6);
        // A naive FF D8 ... FF D9 search would stop inside the APP1 segment.
        let naive_end = jpeg.windows(2).position(|w| w == [0xFF, 0xD9]).unwrap() + 2;
        assert!(naive_end < jpeg.len());
        let pieces = split(&Framing::Concatenated, MAX, [&jpeg[..], &jpeg[..]]);
        assert_eq!(frames(&pieces), vec![jpeg.clone(), jpeg]);
    }

    #[test]
    fn ffmpeg_mjpeg_fixture_gives_five_valid_frames() {
        let pieces = split(&Framing::Concatenated, MAX, FFMPEG_MJPEG.chunks(4096));
        let frames = frames(&pieces);
        assert_eq!(frames.len(), 5);
        for frame in &frames {
            let info = jpeg::inspect(frame).unwrap();
            assert_eq!((info.width, info.height, info.len), (160, 120, frame.len()));
        }
        assert_eq!(
            split(&Framing::Concatenated, MAX, FFMPEG_MJPEG.chunks(1)),
            pieces
        );
    }

    #[test]
    fn garbage_between_frames_is_skipped() {
        let (a, b) = (
            samples::sample_jpeg(16, 16, 7),
            samples::progressive_jpeg(8, 8, 8),
        );
        let input = concat(&[
            b"junk before\r\n\xFF\xD9\xFF\xFF\x00",
            &a,
            &[0; 16],        // ESP32 cameras pad frames
            b"\xFF\xD8\x00", // an SOI not followed by a marker
            &b,
            b"\xFF",
        ]);
        let pieces = split_everywhere(&Framing::Concatenated, MAX, &input);
        assert_eq!(pieces, vec![Piece::Frame(a.into()), Piece::Frame(b.into())]);
    }

    #[test]
    fn a_truncated_frame_is_rejected_and_the_next_one_kept() {
        let (a, b) = (
            samples::sample_jpeg(16, 16, 9),
            samples::sample_jpeg(16, 16, 10),
        );
        let input = concat(&[&a[..a.len() - 40], &b, &a[..a.len() / 2]]);
        let pieces = split_everywhere(&Framing::Concatenated, MAX, &input);
        assert_eq!(frames(&pieces), vec![b]);
        assert_eq!(
            rejections(&pieces),
            vec![
                "truncated: next image began before end-of-image marker",
                "truncated: stream ended before end-of-image marker"
            ]
        );
    }

    #[test]
    fn soi_eoi_only_comes_out_for_the_validator() {
        let a = samples::sample_jpeg(8, 8, 11);
        let input = concat(&[&[0xFF, 0xD8, 0xFF, 0xD9], &a]);
        let pieces = split_everywhere(&Framing::Concatenated, MAX, &input);
        assert_eq!(frames(&pieces), vec![vec![0xFF, 0xD8, 0xFF, 0xD9], a]);
        assert!(jpeg::inspect(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
    }

    #[test]
    fn oversize_frame_is_rejected_then_resynced() {
        let big = samples::sample_jpeg(64, 64, 12);
        let small = samples::sample_jpeg(8, 8, 13);
        let max = big.len() - 1;
        assert!(small.len() < max);
        let input = concat(&[&small, &big, &small, &big]);
        let pieces = split_everywhere(&Framing::Concatenated, max, &input);
        assert_eq!(frames(&pieces), vec![small.clone(), small]);
        assert_eq!(
            rejections(&pieces),
            vec![format!("too large: frame exceeds {max} bytes"); 2]
        );
    }

    #[test]
    fn oversize_is_decided_on_the_first_max_bytes() {
        // Stray bytes past the cap: the image is too large before it is malformed, whether
        // the splitter has already seen the stray bytes or not.
        let good = samples::sample_jpeg(8, 8, 16);
        let mut bad = samples::exif_thumbnail_jpeg(16, 16, 17);
        let sos = bad.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        bad.splice(sos..sos, [0x12, 0x34]);
        let max = sos - 10;
        assert!(good.len() <= max);
        let input = concat(&[&bad, &good]);
        let pieces = split_everywhere(&Framing::Concatenated, max, &input);
        assert_eq!(pieces, vec![oversize(max), Piece::Frame(good.into())]);
    }

    #[test]
    fn fuzz_malformed_past_the_cap_is_chunking_independent() {
        // Found by `fuzz/run.sh` (target `concat`): a header segment runs past the 300-byte
        // cap and stray bytes follow it; one push said "malformed", small chunks "too large".
        let input = include_bytes!("../../tests/fixtures/fuzz/concat-malformed-past-the-cap.bin");
        let pieces = split_everywhere(&Framing::Concatenated, 300, input);
        assert_eq!(pieces, vec![oversize(300)]);
    }

    #[test]
    fn malformed_header_is_rejected_then_resynced() {
        let good = samples::sample_jpeg(8, 8, 14);
        let mut bad = good.clone();
        bad.splice(20..20, [0x12, 0x34]); // stray bytes after the APP0 segment
        let input = concat(&[&bad, &good]);
        let pieces = split_everywhere(&Framing::Concatenated, MAX, &input);
        assert_eq!(
            pieces.first(),
            Some(&Piece::Rejected(
                "malformed: stray bytes between segments".into()
            ))
        );
        assert_eq!(frames(&pieces).last(), Some(&good));
    }

    #[test]
    fn memory_stays_bounded_without_an_end() {
        let max = 4096;
        let mut splitter = ConcatSplitter::new(max);
        // Garbage, then an image whose scan data never ends.
        let mut rejected = 0;
        let head = samples::sample_jpeg(8, 8, 15);
        let sos = head.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        splitter.push(&[0x55; 10_000]);
        splitter.push(&head[..sos + 12]);
        for _ in 0..1000 {
            splitter.push(&[0x12; 512]);
            while let Some(piece) = splitter.next_piece() {
                assert!(matches!(piece, Piece::Rejected(_)));
                rejected += 1;
            }
            assert!(
                splitter.buf.len() <= max + 512,
                "buffered {}",
                splitter.buf.len()
            );
        }
        assert_eq!(rejected, 1);
        assert_eq!(splitter.finish(), None);
    }

    /// Frames and garbage without `FF D8` (so the garbage cannot start a frame).
    fn garbage() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut bytes| {
            for i in 1..bytes.len() {
                if bytes[i - 1] == 0xFF && bytes[i] == 0xD8 {
                    bytes[i] = 0xD9;
                }
            }
            bytes
        })
    }

    fn some_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let all = assorted();
        prop::collection::vec(0..all.len(), 1..5)
            .prop_map(move |picks| picks.into_iter().map(|i| all[i].clone()).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn chunking_never_changes_the_frames(
            frames_in in some_frames(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let input = frames_in.concat();
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in at.into_iter().chain([input.len()]) {
                chunks.push(&input[from..cut]);
                from = cut;
            }
            let whole = split(&Framing::Concatenated, MAX, [&input[..]]);
            prop_assert_eq!(frames(&whole), frames_in);
            prop_assert_eq!(split(&Framing::Concatenated, MAX, chunks), whole);
        }

        #[test]
        fn frames_survive_garbage_between_them(
            frames_in in some_frames(),
            junk in prop::collection::vec(garbage(), 5),
            chunk in 1usize..700,
        ) {
            let mut input = Vec::new();
            for (frame, junk) in frames_in.iter().zip(&junk) {
                input.extend_from_slice(junk);
                input.extend_from_slice(frame);
            }
            input.extend_from_slice(&junk[4]);
            let pieces = split(&Framing::Concatenated, MAX, input.chunks(chunk));
            prop_assert_eq!(frames(&pieces), frames_in);
            prop_assert!(rejections(&pieces).is_empty());
        }
    }
}
