//! Telling a body's framing from its first bytes, for bodies whose Content-Type does not say
//! (ffmpeg posts without one; files and standard input have none). One rule for everyone:
//! [`Sniffer`] gathers up to [`SNIFF_BYTES`] and reports [`Sniff::Unknown`] if they tell
//! nothing; an upload answers that with an error, a source falls back to bare JPEGs.

use super::{Framing, multipart};

/// Bytes gathered before giving up on [`sniff`]: enough for a delimiter line.
pub const SNIFF_BYTES: usize = 64;

/// Guesses the framing from the first bytes of a body without a Content-Type.
///
/// After optional blank lines: `--` starts multipart (the boundary comes from that line if it
/// is complete), `FF D8` starts concatenated JPEGs, and a `Content-` header line is a multipart
/// body without its first delimiter (the boundary is learned later). Otherwise `None`.
pub fn sniff(first_bytes: &[u8]) -> Option<Framing> {
    let start = first_bytes.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let body = &first_bytes[start..];
    if body.starts_with(b"--") {
        let boundary = body
            .iter()
            .position(|&b| b == b'\n')
            .and_then(|end| multipart::boundary_token(&body[..end]))
            .map(|token| String::from_utf8_lossy(token).into_owned());
        return Some(Framing::Multipart(boundary));
    }
    if body.starts_with(&[0xFF, 0xD8]) {
        return Some(Framing::Concatenated);
    }
    let prefix = b"content-";
    if body.len() >= prefix.len() && body[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return Some(Framing::Multipart(None));
    }
    None
}

/// What the first bytes of a body said so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    /// Too few bytes to tell yet.
    NeedMore,
    /// The framing they tell.
    Known(Framing),
    /// [`SNIFF_BYTES`] of them, or the whole body, told nothing.
    Unknown,
}

/// Gathers a body's first bytes until they tell its framing (see [`sniff`]).
#[derive(Debug, Default)]
pub struct Sniffer {
    head: Vec<u8>,
}

impl Sniffer {
    /// A sniffer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next chunk of the body and says what the bytes so far tell.
    pub fn push(&mut self, chunk: &[u8]) -> Sniff {
        self.head.extend_from_slice(chunk);
        match sniff(&self.head) {
            Some(framing) => Sniff::Known(framing),
            None if self.head.len() >= SNIFF_BYTES => Sniff::Unknown,
            None => Sniff::NeedMore,
        }
    }

    /// The bytes gathered so far, to be fed to the splitter once the framing is known.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Takes the bytes gathered so far, leaving the sniffer empty.
    pub fn take_head(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_tells_multipart_and_its_boundary_from_jpeg_and_from_nothing() {
        assert_eq!(
            sniff(b"--ffmpeg\r\nContent-type: image/jpeg\r\n"),
            Some(Framing::Multipart(Some("ffmpeg".into())))
        );
        assert_eq!(
            sniff(b"\r\n\r\n--b--\n"),
            Some(Framing::Multipart(Some("b".into())))
        );
        assert_eq!(sniff(b"--ffmp"), Some(Framing::Multipart(None)));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(Framing::Concatenated)
        );
        assert_eq!(sniff(b"\r\n\xFF\xD8"), Some(Framing::Concatenated));
        assert_eq!(
            sniff(b"Content-Type: image/jpeg\r\n"),
            Some(Framing::Multipart(None))
        );
        assert_eq!(sniff(b"\x89PNG\r\n"), None);
        assert_eq!(sniff(b"\r\n"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_sniffer_waits_for_sniff_bytes_then_gives_up() {
        let mut sniffer = Sniffer::new();
        assert_eq!(sniffer.push(b"\r\n"), Sniff::NeedMore);
        assert_eq!(sniffer.push(&[b'x'; SNIFF_BYTES - 3]), Sniff::NeedMore);
        assert_eq!(sniffer.push(b"x"), Sniff::Unknown);
        assert_eq!(sniffer.head().len(), SNIFF_BYTES);

        // Blank lines do not count against telling: the decision looks at every byte held.
        let mut sniffer = Sniffer::new();
        assert_eq!(sniffer.push(&[b'\n'; SNIFF_BYTES - 1]), Sniff::NeedMore);
        assert_eq!(
            sniffer.push(b"\n--cam\r\n"),
            Sniff::Known(Framing::Multipart(Some("cam".into())))
        );
        assert_eq!(sniffer.take_head().len(), SNIFF_BYTES + 7);
        assert!(sniffer.head().is_empty());
    }
}
