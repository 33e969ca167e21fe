//! Tests of [`inspect`]: what the walker accepts, what it refuses and with which reason.

use super::*;
use crate::jpeg::samples::{
    encode, exif_thumbnail_jpeg, find_segment, no_dht_jpeg, progressive_jpeg, rebuild,
    restart_jpeg, sample_jpeg, segments,
};
use jpeg_encoder::ColorType;

#[test]
fn valid_baseline_reports_size() {
    let jpeg = sample_jpeg(33, 17, 1);
    let info = inspect(&jpeg).unwrap();
    assert_eq!(
        info,
        JpegInfo {
            width: 33,
            height: 17,
            len: jpeg.len()
        }
    );
}

#[test]
fn progressive_with_tables_between_scans() {
    let jpeg = progressive_jpeg(40, 24, 2);
    let (headers, _) = segments(&jpeg);
    assert!(
        headers.iter().any(|&(code, _)| code == 0xC2),
        "not progressive"
    );
    let info = inspect(&jpeg).unwrap();
    assert_eq!((info.width, info.height, info.len), (40, 24, jpeg.len()));
}

#[test]
fn grayscale_and_cmyk_component_counts() {
    let gray = encode(16, 16, 3, ColorType::Luma, |_| {});
    assert_eq!(inspect(&gray).unwrap().width, 16);
    let cmyk = encode(16, 16, 3, ColorType::Cmyk, |_| {});
    assert_eq!(inspect(&cmyk).unwrap().len, cmyk.len());
}

#[test]
fn a_uvc_frame_without_huffman_tables_passes() {
    let jpeg = no_dht_jpeg(32, 32, 4);
    assert!(!jpeg.windows(2).any(|w| w == [0xFF, 0xC4]));
    assert_eq!(inspect(&jpeg).unwrap().len, jpeg.len());
}

#[test]
fn exif_thumbnail_does_not_end_the_image_early() {
    let jpeg = exif_thumbnail_jpeg(24, 24, 5);
    let info = inspect(&jpeg).unwrap();
    assert_eq!((info.width, info.len), (24, jpeg.len()));
}

#[test]
fn restart_markers_in_scan_data() {
    let jpeg = restart_jpeg(32, 32, 6);
    assert!(
        jpeg.windows(2)
            .any(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
    );
    assert_eq!(inspect(&jpeg).unwrap().len, jpeg.len());
}

#[test]
fn fill_bytes_before_markers() {
    let mut jpeg = sample_jpeg(16, 16, 7);
    let sof = find_segment(&jpeg, 0xC0);
    jpeg.splice(sof..sof, [0xFF, 0xFF, 0xFF]);
    let eoi = jpeg.len() - 2;
    jpeg.splice(eoi..eoi, [0xFF, 0xFF]);
    assert_eq!(inspect(&jpeg).unwrap().len, jpeg.len());
}

#[test]
fn real_ffmpeg_frames_pass_including_16x16() {
    for (bytes, w) in [
        (
            &include_bytes!("../../tests/fixtures/ffmpeg-16x16.mjpeg")[..],
            16,
        ),
        (
            &include_bytes!("../../tests/fixtures/ffmpeg-160x120.mjpeg")[..],
            160,
        ),
    ] {
        let mut rest = bytes;
        let mut count = 0;
        while !rest.is_empty() {
            let info = inspect(rest).unwrap();
            assert_eq!(info.width, w);
            assert!(info.len >= MIN_JPEG_BYTES);
            rest = &rest[info.len..];
            count += 1;
        }
        assert_eq!(count, 5);
    }
}

#[test]
fn soi_eoi_only_is_rejected() {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xD9];
    assert_eq!(inspect(&bytes), Err(JpegError::TooShort(4)));
    bytes.resize(MIN_JPEG_BYTES, 0);
    assert!(matches!(inspect(&bytes), Err(JpegError::Malformed(_))));
}

#[test]
fn a_tiny_image_padded_past_the_minimum_is_still_too_short() {
    // Found by the fuzzer: the cut-out image must pass on its own, as `Frame` keeps only it.
    let mut bytes = vec![0xFF, 0xD8];
    bytes.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
    bytes.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0x12, 0x34]);
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    let image = bytes.len();
    bytes.resize(MIN_JPEG_BYTES * 2, 0);
    assert_eq!(inspect(&bytes), Err(JpegError::TooShort(image)));
}

#[test]
fn not_a_jpeg() {
    assert_eq!(inspect(&[0x89; 200]), Err(JpegError::NotJpeg));
    let mut png_ish = sample_jpeg(16, 16, 8);
    png_ish[0] = 0x89;
    assert_eq!(inspect(&png_ish), Err(JpegError::NotJpeg));
}

#[test]
fn segment_length_below_two() {
    for bad_len in [0u8, 1] {
        let mut jpeg = sample_jpeg(16, 16, 9);
        let dqt = find_segment(&jpeg, 0xDB);
        jpeg[dqt + 2] = 0;
        jpeg[dqt + 3] = bad_len;
        assert_eq!(
            inspect(&jpeg),
            Err(JpegError::Malformed("segment length below 2"))
        );
    }
}

#[test]
fn segment_length_overflowing_the_buffer() {
    let mut jpeg = sample_jpeg(16, 16, 10);
    let dqt = find_segment(&jpeg, 0xDB);
    jpeg[dqt + 2] = 0xFF;
    jpeg[dqt + 3] = 0xFF;
    jpeg.truncate(dqt + 1000);
    assert_eq!(
        inspect(&jpeg),
        Err(JpegError::Truncated("segment runs past the end"))
    );
    // A length field cut in half.
    let short = [
        &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10][..],
        &[0; 150],
        &[0xFF, 0xFE, 0x00],
    ]
    .concat();
    assert!(matches!(
        inspect(&short),
        Err(JpegError::Malformed(_) | JpegError::Truncated(_))
    ));
}

#[test]
fn zero_components_rejected() {
    let mut jpeg = encode(16, 16, 11, ColorType::Luma, |_| {});
    let sof = find_segment(&jpeg, 0xC0);
    jpeg[sof + 9] = 0; // Nf
    assert_eq!(
        inspect(&jpeg),
        Err(JpegError::Malformed(
            "frame header must have 1, 3 or 4 components"
        ))
    );
}

#[test]
fn zero_width_and_bad_precision_rejected() {
    let jpeg = sample_jpeg(16, 16, 12);
    let sof = find_segment(&jpeg, 0xC0);
    let mut zero = jpeg.clone();
    zero[sof + 7] = 0;
    zero[sof + 8] = 0;
    assert_eq!(
        inspect(&zero),
        Err(JpegError::Malformed("zero width or height"))
    );
    let mut precision = jpeg.clone();
    precision[sof + 4] = 16;
    assert!(matches!(inspect(&precision), Err(JpegError::Malformed(_))));
    let mut sampling = jpeg;
    sampling[sof + 11] = 0x00;
    assert!(matches!(inspect(&sampling), Err(JpegError::Malformed(_))));
}

#[test]
fn huge_dimensions_rejected() {
    let mut jpeg = sample_jpeg(16, 16, 13);
    let sof = find_segment(&jpeg, 0xC0);
    jpeg[sof + 5] = 0xFF;
    jpeg[sof + 6] = 0xFF;
    assert_eq!(
        inspect(&jpeg),
        Err(JpegError::TooLarge {
            width: 16,
            height: 65535
        })
    );
}

#[test]
fn arithmetic_and_lossless_sof_rejected() {
    for code in [0xC3, 0xC9, 0xCA, 0xCB, 0xCD, 0xCF] {
        let mut jpeg = sample_jpeg(16, 16, 14);
        let sof = find_segment(&jpeg, 0xC0);
        jpeg[sof + 1] = code;
        assert!(
            matches!(inspect(&jpeg), Err(JpegError::Unsupported(_))),
            "{code:02X}"
        );
    }
}

#[test]
fn two_frame_headers_or_none_rejected() {
    let jpeg = sample_jpeg(16, 16, 15);
    let sof = find_segment(&jpeg, 0xC0);
    let (segs, _) = segments(&jpeg);
    let sof_seg = segs.iter().find(|(c, _)| *c == 0xC0).unwrap().1.clone();
    let mut twice = jpeg.clone();
    twice.splice(sof..sof, sof_seg);
    assert_eq!(
        inspect(&twice),
        Err(JpegError::Malformed("more than one frame header"))
    );
    let none = rebuild(&jpeg, |code| code != 0xC0);
    assert_eq!(
        inspect(&none),
        Err(JpegError::Malformed("scan before frame header"))
    );
}

#[test]
fn truncated_is_reported() {
    let jpeg = sample_jpeg(32, 32, 16);
    for cut in [jpeg.len() - 1, jpeg.len() - 2, jpeg.len() / 2, 200] {
        assert!(
            matches!(inspect(&jpeg[..cut]), Err(JpegError::Truncated(_))),
            "cut at {cut}"
        );
    }
    assert_eq!(
        inspect(&jpeg[..jpeg.len() - 2]).unwrap_err().to_string(),
        "truncated: no end-of-image marker"
    );
}

#[test]
fn bytes_after_end_of_image_are_allowed_and_cut_off() {
    let jpeg = sample_jpeg(16, 16, 17);
    let mut padded = jpeg.clone();
    padded.extend_from_slice(&[0; 16]);
    padded.extend_from_slice(b"junk\xFF\xD9");
    assert_eq!(inspect(&padded).unwrap().len, jpeg.len());
}

#[test]
fn stray_bytes_between_segments_rejected() {
    let mut jpeg = sample_jpeg(16, 16, 18);
    let dqt = find_segment(&jpeg, 0xDB);
    jpeg.insert(dqt, 0x00);
    assert!(matches!(inspect(&jpeg), Err(JpegError::Malformed(_))));
}

#[test]
fn never_panics_on_any_prefix_or_byte_flip() {
    let jpeg = progressive_jpeg(24, 16, 19);
    for cut in 0..jpeg.len() {
        let _ = inspect(&jpeg[..cut]);
    }
    for i in 0..jpeg.len().min(700) {
        for flip in [0x00, 0xFF, 0x01, 0xD9, 0xDA] {
            let mut bad = jpeg.clone();
            bad[i] = flip;
            if let Ok(info) = inspect(&bad) {
                assert!(info.len <= bad.len());
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn walker_never_panics_and_len_is_in_bounds(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), seed in 0u64..4) {
        let _ = inspect(&bytes);
        // Also a real header followed by random data.
        let mut mixed = sample_jpeg(8, 8, seed);
        mixed.truncate(300);
        mixed.extend_from_slice(&bytes);
        if let Ok(info) = inspect(&mixed) {
            proptest::prop_assert!(info.len <= mixed.len());
        }
    }
}
