//! The mark an MJPEG run writes into every JPEG it publishes: a comment segment (`FF FE`)
//! right after start-of-image holding the frame's number. An MJPEG part is the JPEG and
//! nothing else, no JSON with a `seq`, so the frame carries its own number; a subscriber reads
//! it from the first bytes of the part, for latency and drops, and skips the rest unread.
//!
//! Every mark has the same length (the number is zero-padded), so a marked frame is always
//! [`LEN`] bytes longer than the file it came from. Decoders and framecast's validator skip
//! comment segments by their length; framecast sends the JPEG on byte for byte.

/// What the comment says before the number.
const PREFIX: &[u8] = b"loadgen seq=";
/// Digits of the number: enough for any `u64`.
const DIGITS: usize = 20;
/// Bytes the mark adds to a frame: the `FF FE` marker, the segment length, the text.
pub const LEN: usize = 4 + PREFIX.len() + DIGITS;
/// Bytes at the start of a marked JPEG that hold the number: start-of-image and the mark.
pub const HEAD_LEN: usize = 2 + LEN;

/// Writes into `out` the JPEG `jpeg` (which starts with `FF D8`) with the mark for `seq`
/// after its start-of-image.
pub fn write(out: &mut Vec<u8>, jpeg: &[u8], seq: u64) {
    out.clear();
    out.reserve(jpeg.len() + LEN);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&segment(seq));
    out.extend_from_slice(&jpeg[2..]);
}

/// The mark for `seq`: the segment written after start-of-image.
pub fn segment(seq: u64) -> [u8; LEN] {
    let mut mark = [0u8; LEN];
    let text_len = (LEN - 2) as u16; // the length field counts itself, not the marker
    mark[..2].copy_from_slice(&[0xFF, 0xFE]);
    mark[2..4].copy_from_slice(&text_len.to_be_bytes());
    mark[4..4 + PREFIX.len()].copy_from_slice(PREFIX);
    let digits = format!("{seq:0DIGITS$}");
    mark[4 + PREFIX.len()..].copy_from_slice(digits.as_bytes());
    mark
}

/// The number in the mark at the start of `head` (a part's first bytes), if it is there.
pub fn seq_in(head: &[u8]) -> Option<u64> {
    let head = head.get(..HEAD_LEN)?;
    let (soi, mark) = head.split_at(2);
    if soi != [0xFF, 0xD8] || mark[..4] != segment(0)[..4] || !mark[4..].starts_with(PREFIX) {
        return None;
    }
    let digits = &mark[4 + PREFIX.len()..];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_reads_back_from_the_first_bytes() {
        let jpeg = crate::frames::test_jpeg(16, 8);
        let mut marked = Vec::new();
        for seq in [0, 1, 42, u64::MAX] {
            write(&mut marked, &jpeg, seq);
            assert_eq!(marked.len(), jpeg.len() + LEN);
            assert_eq!(seq_in(&marked[..HEAD_LEN]), Some(seq));
            assert_eq!(&marked[HEAD_LEN..], &jpeg[2..]);
        }
        assert_eq!(seq_in(&marked[..HEAD_LEN - 1]), None, "too short");
        assert_eq!(seq_in(&jpeg), None, "an unmarked JPEG");
        let mut bad = marked.clone();
        bad[HEAD_LEN - 1] = b'x';
        assert_eq!(seq_in(&bad), None);
    }

    #[test]
    fn a_marked_jpeg_still_decodes_to_the_same_size() {
        let jpeg = crate::frames::test_jpeg(24, 16);
        let mut marked = Vec::new();
        write(&mut marked, &jpeg, 7);
        assert_eq!(crate::frames::decoded_dimensions(&marked), Ok((24, 16)));
    }
}
