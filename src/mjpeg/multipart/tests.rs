//! Tests of the multipart splitter, one per camera or muxer habit it must survive (see
//! `docs/camera-quirks.md`), plus its limits: oversize parts and headers, memory, resync.

use super::*;
use crate::jpeg::{self, samples};
use crate::mjpeg::Framing;
use crate::mjpeg::tests::{frames, rejections, split, split_everywhere};
use proptest::prelude::*;

const MAX: usize = 1 << 20;
const FFMPEG_MPJPEG: &[u8] = include_bytes!("../../../tests/fixtures/ffmpeg-160x120.mpjpeg");

fn b() -> Framing {
    Framing::Multipart(Some("b".into()))
}

fn jpegs(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| samples::sample_jpeg(8 + 8 * (i as u16 % 2), 8, 100 + i))
        .collect()
}

/// A well-formed part: delimiter, headers, body, CRLF.
fn part(frame: &[u8], with_length: bool) -> Vec<u8> {
    let mut out = b"--b\r\nContent-Type: image/jpeg\r\n".to_vec();
    if with_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", frame.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn ffmpeg_mpjpeg_fixture_gives_five_frames_however_it_is_chunked() {
    let boundary = Framing::Multipart(Some("ffmpeg".into()));
    let pieces = split(&boundary, MAX, [FFMPEG_MPJPEG]);
    let got = frames(&pieces);
    assert_eq!(got.len(), 5);
    assert!(rejections(&pieces).is_empty());
    for frame in &got {
        assert_eq!(jpeg::inspect(frame).unwrap().len, frame.len());
    }
    for size in [1, 2, 3, 7, 100, 4096] {
        assert_eq!(
            split(&boundary, MAX, FFMPEG_MPJPEG.chunks(size)),
            pieces,
            "chunks of {size}"
        );
    }
    for at in (0..FFMPEG_MPJPEG.len()).step_by(97) {
        let (x, y) = FFMPEG_MPJPEG.split_at(at);
        assert_eq!(split(&boundary, MAX, [x, y]), pieces, "split at {at}");
    }
    // Same frames as the concatenated fixture made with the same settings.
    let raw = include_bytes!("../../../tests/fixtures/ffmpeg-160x120.mjpeg");
    assert_eq!(got.concat(), raw.to_vec());
}

#[test]
fn ffmpeg_layout_with_a_delimiter_after_each_part_splits_at_every_byte() {
    // Delimiter after each part, lower-case header names, no closing delimiter.
    let frames_in = jpegs(3);
    let mut input = b"--ffmpeg\r\n".to_vec();
    for frame in &frames_in {
        let head = format!(
            "Content-type: image/jpeg\r\nContent-length: {}\r\n\r\n",
            frame.len()
        );
        input.extend_from_slice(head.as_bytes());
        input.extend_from_slice(frame);
        input.extend_from_slice(b"\r\n--ffmpeg\r\n");
    }
    let pieces = split_everywhere(&Framing::Multipart(Some("ffmpeg".into())), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty());
}

#[test]
fn an_unknown_boundary_is_learned_from_the_first_dash_line() {
    let pieces = split(&Framing::Multipart(None), MAX, FFMPEG_MPJPEG.chunks(1000));
    assert_eq!(frames(&pieces).len(), 5);
    let sniffed = crate::mjpeg::sniff(&FFMPEG_MPJPEG[..64]).unwrap();
    assert_eq!(split(&sniffed, MAX, [FFMPEG_MPJPEG]), pieces);
}

#[test]
fn a_boundary_parameter_with_leading_dashes_matches_lines_with_two_or_four() {
    let frames_in = jpegs(2);
    let body = |frame: &[u8], dashes: &str| {
        let mut out =
            format!("{dashes}myboundary\r\nContent-Type: image/jpeg\r\n\r\n").into_bytes();
        out.extend_from_slice(frame);
        out.extend_from_slice(b"\r\n");
        out
    };
    let input = [body(&frames_in[0], "--"), body(&frames_in[1], "----")].concat();
    for param in ["--myboundary", "myboundary"] {
        let framing = Framing::Multipart(Some(param.into()));
        let pieces = split_everywhere(&framing, MAX, &input);
        assert_eq!(frames(&pieces), frames_in, "boundary={param}");
    }
}

#[test]
fn a_quoted_boundary_from_the_content_type_splits_the_body() {
    let framing = Framing::Multipart(
        ContentType::parse("multipart/x-mixed-replace;charset=x; boundary=\"b\"").boundary(),
    );
    let frames_in = jpegs(2);
    let input = [part(&frames_in[0], true), part(&frames_in[1], false)].concat();
    assert_eq!(frames(&split_everywhere(&framing, MAX, &input)), frames_in);
}

#[test]
fn repeated_delimiters_and_bare_lf_lines_are_tolerated() {
    let frames_in = jpegs(2);
    let mut input = b"--b\n--b\nContent-type:image/jpeg\n\n".to_vec();
    input.extend_from_slice(&frames_in[0]);
    input.extend_from_slice(b"\n--b\n--b\r\n--b\nContent-Length: ");
    input.extend_from_slice(frames_in[1].len().to_string().as_bytes());
    input.extend_from_slice(b"\n\n");
    input.extend_from_slice(&frames_in[1]);
    input.extend_from_slice(b"\n--b\n");
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(
        pieces,
        frames_in
            .into_iter()
            .map(|f| Piece::Frame(f.into()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_body_starting_with_headers_instead_of_a_delimiter_is_split() {
    let frames_in = jpegs(2);
    let mut input = format!(
        "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        frames_in[0].len()
    )
    .into_bytes();
    input.extend_from_slice(&frames_in[0]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&part(&frames_in[1], true));
    input.extend_from_slice(b"--b\r\n"); // boundary used as a trailer
    for framing in [b(), Framing::Multipart(None)] {
        assert_eq!(frames(&split_everywhere(&framing, MAX, &input)), frames_in);
    }
    assert_eq!(crate::mjpeg::sniff(&input), Some(Framing::Multipart(None)));
}

#[test]
fn a_header_glued_to_its_delimiter_is_still_read() {
    let frames_in = jpegs(2);
    let mut input = Vec::new();
    for frame in &frames_in {
        input.extend_from_slice(b"--jpgboundaryContent-type: image/jpeg\r\n\r\n");
        input.extend_from_slice(frame);
        input.extend_from_slice(b"\r\n");
    }
    let framing = Framing::Multipart(Some("jpgboundary".into()));
    assert_eq!(frames(&split_everywhere(&framing, MAX, &input)), frames_in);
    // Unknown boundary: the wrong one is learned, yet frames are still found by resync.
    let learned = split(&Framing::Multipart(None), MAX, [&input[..]]);
    assert_eq!(frames(&learned), frames_in);
}

#[test]
fn a_part_without_content_length_ends_at_its_end_of_image() {
    let frames_in = vec![
        samples::sample_jpeg(16, 16, 1),
        samples::progressive_jpeg(16, 8, 2),
        samples::exif_thumbnail_jpeg(8, 8, 3),
        samples::restart_jpeg(8, 8, 4),
    ];
    let input: Vec<u8> = frames_in.iter().flat_map(|f| part(f, false)).collect();
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty());
}

#[test]
fn a_part_without_content_length_over_the_cap_is_rejected_then_resynced() {
    let big = samples::sample_jpeg(64, 64, 5);
    let small = samples::sample_jpeg(8, 8, 6);
    let max = big.len() - 1;
    let input = [part(&small, false), part(&big, false), part(&small, false)].concat();
    let pieces = split_everywhere(&b(), max, &input);
    assert_eq!(frames(&pieces), vec![small.clone(), small]);
    assert_eq!(
        rejections(&pieces),
        vec![format!("too large: frame exceeds {max} bytes")]
    );
}

#[test]
fn oversize_is_decided_on_the_first_max_bytes() {
    // Stray bytes past the cap: the part is too large before it is malformed, whether the
    // splitter has already seen the stray bytes or not.
    let small = samples::sample_jpeg(8, 8, 12);
    let mut big = samples::exif_thumbnail_jpeg(16, 16, 13);
    let sos = big.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    big.splice(sos..sos, [0x12, 0x34]);
    let max = sos - 10;
    assert!(small.len() <= max);
    let input = [part(&big, false), part(&small, false)].concat();
    let pieces = split_everywhere(&b(), max, &input);
    assert_eq!(pieces, vec![oversize(max), Piece::Frame(small.into())]);
}

#[test]
fn fuzz_resync_after_oversize_is_chunking_independent() {
    // Found by `fuzz/run.sh` (target `multipart`): a segment length of 0xFFD8 makes the
    // image too large at once. The resync point past that segment used to be clamped to
    // the bytes that had arrived, so small chunks found the `FF D8 FF` inside the segment
    // that one push skipped.
    let input = b"\xFF\xD8\xFF\x0A\xFF\xD8\xFF\xD8\xFF";
    let pieces = split_everywhere(&b(), 4096, input);
    assert_eq!(pieces, vec![oversize(4096)]);
}

#[test]
fn blank_lines_instead_of_delimiters_still_give_every_frame() {
    let frames_in = jpegs(3);
    let mut input = part(&frames_in[0], true);
    input.extend_from_slice(b"\r\n\r\n");
    input.extend_from_slice(&frames_in[1]);
    input.extend_from_slice(b"\r\n\r\nContent-Type: image/jpeg\r\n\r\n");
    input.extend_from_slice(&frames_in[2]);
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty());
}

#[test]
fn closing_delimiters_mid_stream_and_non_jpeg_parts_are_skipped_quietly() {
    let frames_in = jpegs(3);
    // A non-JPEG body that even contains FF D8 FF: it must not be taken for a frame.
    let h264 = b"\x00\x00\x00\x01\x67\xFF\xD8\xFF\xE0 not a frame \xFF\xD9";
    let mut input = Vec::new();
    for (i, frame) in frames_in.iter().enumerate() {
        input.extend_from_slice(b"--b--\r\nContent-Type: video/x-h264\r\n");
        if i % 2 == 0 {
            input.extend_from_slice(format!("Content-Length: {}\r\n", h264.len()).as_bytes());
        }
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(h264);
        input.extend_from_slice(b"\r\n--b--\r\nContent-Type: image/jpeg\r\n\r\n");
        input.extend_from_slice(frame);
        input.extend_from_slice(b"\r\n--b--\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
    }
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty(), "{pieces:?}");
}

#[test]
fn missing_and_extra_blank_lines_are_tolerated() {
    let frames_in = jpegs(3);
    let mut input = b"\r\n\r\n\r\n--b\r\n\r\n\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    input.extend_from_slice(&frames_in[0]);
    input.extend_from_slice(b"--b\r\nContent-Type: image/jpeg\r\n"); // no CRLF before, no blank line after
    input.extend_from_slice(&frames_in[1]);
    input.extend_from_slice(b"\r\n\r\n\r\n\r\n--b\r\n");
    input.extend_from_slice(&frames_in[2]); // no headers, no blank line
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty());
}

#[test]
fn http_chunk_edges_do_not_matter_and_raw_chunked_encoding_stays_bounded() {
    let frames_in = jpegs(3);
    let body: Vec<u8> = frames_in.iter().flat_map(|f| part(f, true)).collect();
    // After de-chunking (hyper's job), HTTP chunk edges are just chunk edges.
    let http_chunks: Vec<&[u8]> = body.chunks(333).collect();
    assert_eq!(
        frames(&split(&b(), MAX, http_chunks.iter().copied())),
        frames_in
    );
    // Fed the raw chunked encoding by mistake, the parser still ends and stays bounded.
    let mut raw = Vec::new();
    for chunk in &http_chunks {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    for piece in split(&b(), MAX, raw.chunks(100)) {
        if let Piece::Frame(frame) = piece {
            assert!(frame.starts_with(&IMAGE_START) && frame.ends_with(&[0xFF, 0xD9]));
        }
    }
}

#[test]
fn padding_after_end_of_image_is_cut_off() {
    let frames_in = jpegs(2);
    let mut input = Vec::new();
    for (i, frame) in frames_in.iter().enumerate() {
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0; 16]);
        input.extend_from_slice(&part(&padded, i == 0));
    }
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty());
}

#[test]
fn truncated_images_are_rejected_and_the_next_frame_kept() {
    let frames_in = jpegs(3);
    let cut = &frames_in[0][..frames_in[0].len() - 30];
    // Content-Length that matches the cut-off body, then no length at all, then EOF.
    let input = [
        part(cut, true),
        part(&frames_in[1], true),
        part(cut, false),
        part(&frames_in[2], true),
        b"--b\r\nContent-Type: image/jpeg\r\n\r\n".to_vec(),
        cut.to_vec(),
    ]
    .concat();
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in[1..].to_vec());
    assert_eq!(
        rejections(&pieces),
        vec![
            "truncated: part ended before end-of-image marker",
            "truncated: next image began before end-of-image marker",
            "truncated: stream ended before end-of-image marker",
        ]
    );
}

#[test]
fn frames_without_huffman_tables_pass_through() {
    let frames_in = vec![
        samples::no_dht_jpeg(16, 16, 7),
        samples::no_dht_jpeg(8, 8, 8),
    ];
    let input = [part(&frames_in[0], true), part(&frames_in[1], false)].concat();
    assert_eq!(frames(&split_everywhere(&b(), MAX, &input)), frames_in);
}

#[test]
fn a_huge_content_length_is_rejected_before_anything_is_buffered() {
    let frames_in = jpegs(2);
    let mut input =
        b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: 99999999999999999999999\r\n\r\n"
            .to_vec();
    input.extend_from_slice(&frames_in[0]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&part(&frames_in[1], true));
    let pieces = split_everywhere(&b(), 4096, &input);
    assert_eq!(frames(&pieces), frames_in[1..].to_vec());
    assert_eq!(
        rejections(&pieces),
        vec!["too large: part announces 18446744073709551615 bytes, limit is 4096"]
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn joining_mid_stream_gives_every_later_frame_whole() {
    let whole = frames(&split(
        &Framing::Multipart(Some("ffmpeg".into())),
        MAX,
        [FFMPEG_MPJPEG],
    ));
    for start in (1..FFMPEG_MPJPEG.len()).step_by(211) {
        let tail = &FFMPEG_MPJPEG[start..];
        for framing in [
            Framing::Multipart(Some("ffmpeg".into())),
            Framing::Multipart(None),
        ] {
            let got = frames(&split(&framing, MAX, tail.chunks(512)));
            // Every frame after the join point comes out whole and in order.
            let expected: Vec<_> = whole
                .iter()
                .filter(|f| contains(tail, f))
                .cloned()
                .collect();
            assert!(got.ends_with(&expected), "start {start}");
        }
    }
}

#[test]
fn wrong_content_length_falls_back_to_scanning() {
    let frames_in = jpegs(3);
    let mut input = Vec::new();
    for (frame, claimed) in
        frames_in
            .iter()
            .zip([frames_in[0].len() - 100, frames_in[1].len() + 77, 5])
    {
        input.extend_from_slice(
            format!("--b\r\nContent-Type: image/jpeg\r\nContent-Length: {claimed}\r\n\r\n")
                .as_bytes(),
        );
        input.extend_from_slice(frame);
        input.extend_from_slice(b"\r\n");
    }
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(frames(&pieces), frames_in);
    assert!(rejections(&pieces).is_empty());
}

#[test]
fn part_headers_over_the_cap_are_rejected_then_resynced() {
    let frames_in = jpegs(2);
    let mut input = b"--b\r\nContent-Type: image/jpeg\r\n".to_vec();
    for i in 0..200 {
        input.extend_from_slice(format!("X-Padding-{i}: {}\r\n", "x".repeat(40)).as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&frames_in[0]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&part(&frames_in[1], true));
    let pieces = split(&b(), MAX, input.chunks(7));
    assert_eq!(
        pieces.first(),
        Some(&Piece::Rejected(format!(
            "malformed: part headers exceed {MAX_PART_HEADER_BYTES} bytes"
        )))
    );
    // The body behind the oversized headers is found by resync; nothing is lost after it.
    assert_eq!(frames(&pieces).last(), Some(&frames_in[1]));
}

#[test]
fn non_jpeg_in_a_jpeg_part_is_reported() {
    let frame = samples::sample_jpeg(8, 8, 9);
    let mut input = b"--b\r\nContent-Type: image/jpeg\r\n\r\nGIF89a....\r\n".to_vec();
    input.extend_from_slice(b"--b\r\n\r\nno type, not a jpeg\r\n");
    input.extend_from_slice(&part(&frame, true));
    let pieces = split_everywhere(&b(), MAX, &input);
    assert_eq!(
        pieces,
        vec![
            Piece::Rejected("not a JPEG: image part does not start with FF D8 FF".into()),
            Piece::Frame(frame.into())
        ]
    );
}

#[test]
fn clean_end_after_delimiter_or_in_between() {
    let frame = samples::sample_jpeg(8, 8, 10);
    for tail in [
        &b""[..],
        b"--b\r\n",
        b"--b",
        b"--b--\r\n",
        b"\r\n",
        b"--b\r\nContent-Type: text/plain\r\n\r\nab",
    ] {
        let input = [part(&frame, true), tail.to_vec()].concat();
        assert_eq!(
            split(&b(), MAX, [&input[..]]),
            vec![Piece::Frame(frame.clone().into())],
            "{tail:?}"
        );
    }
}

#[test]
fn memory_stays_bounded() {
    let max = 4096;
    let mut splitter = MultipartSplitter::new(Some("b"), max);
    let head = samples::sample_jpeg(8, 8, 11);
    let sos = head.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    let feeds: [&[u8]; 4] = [
        &[0x41; 600],                              // a line that never ends
        b"--b\r\nContent-Type: image/jpeg\r\nX: ", // headers that never end
        &[0x42; 500],
        &[0x12; 512], // scan data without end
    ];
    splitter.push(b"--b\r\n\r\n");
    splitter.push(&head[..sos + 12]);
    for round in 0..300 {
        splitter.push(feeds[round % 4]);
        while splitter.next_piece().is_some() {}
        assert!(
            splitter.buf.len() <= max + MAX_PART_HEADER_BYTES + 600,
            "{}",
            splitter.buf.len()
        );
    }
}

/// How one part of a generated stream is written.
#[derive(Debug, Clone)]
struct Style {
    length: bool,
    lf_only: bool,
    dashes: bool,
    closing: bool,
    junk: Vec<u8>,
}

fn style() -> impl Strategy<Value = Style> {
    // Junk between parts: no `-` (so no delimiter or `Content-` line) and no FF (no SOI).
    let junk = prop::collection::vec(
        any::<u8>().prop_filter("no - or FF", |b| *b != b'-' && *b != 0xFF),
        0..24,
    );
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        junk,
    )
        .prop_map(|(length, lf_only, dashes, closing, junk)| Style {
            length,
            lf_only,
            dashes,
            closing,
            junk,
        })
}

fn stream(frames_in: &[Vec<u8>], styles: &[Style]) -> Vec<u8> {
    let mut out = Vec::new();
    for (frame, s) in frames_in.iter().zip(styles) {
        let nl: &[u8] = if s.lf_only { b"\n" } else { b"\r\n" };
        out.extend_from_slice(&s.junk);
        out.extend_from_slice(nl);
        out.extend_from_slice(if s.dashes { b"----b" } else { b"--b" });
        if s.closing {
            out.extend_from_slice(b"--");
        }
        out.extend_from_slice(nl);
        out.extend_from_slice(b"content-type: image/jpeg");
        out.extend_from_slice(nl);
        if s.length {
            out.extend_from_slice(format!("Content-Length: {}", frame.len()).as_bytes());
            out.extend_from_slice(nl);
        }
        out.extend_from_slice(nl);
        out.extend_from_slice(frame);
    }
    out
}

fn some_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let all = [
        samples::sample_jpeg(8, 8, 1),
        samples::progressive_jpeg(16, 8, 2),
        samples::exif_thumbnail_jpeg(8, 8, 3),
        samples::no_dht_jpeg(8, 8, 4),
    ];
    prop::collection::vec(0..all.len(), 1..5)
        .prop_map(move |picks| picks.into_iter().map(|i| all[i].clone()).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunking_never_changes_the_frames(
        frames_in in some_frames(),
        styles in prop::collection::vec(style(), 4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        learn in any::<bool>(),
    ) {
        let input = stream(&frames_in, &styles);
        let framing = if learn { Framing::Multipart(None) } else { b() };
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for cut in at.into_iter().chain([input.len()]) {
            chunks.push(&input[from..cut]);
            from = cut;
        }
        let whole = split(&framing, MAX, [&input[..]]);
        prop_assert_eq!(frames(&whole), frames_in);
        prop_assert!(rejections(&whole).is_empty());
        prop_assert_eq!(split(&framing, MAX, chunks), whole);
    }
}
