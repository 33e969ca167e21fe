//! Reading a Content-Type value — the upload's header, a camera's answer, a multipart part's
//! header — in one place, leniently, because cameras write their parameters in every form.
//!
//! Hand-written rather than the `mime` crate: `mime` refuses values cameras really send (a
//! parameter without `=`, spaces around `=` or after a token) and returns quoted values with
//! their `\` escapes still in, while a refused header here would mean a stream not shown.

use super::Framing;

/// A Content-Type value taken apart: the media type, and its parameters read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// `type/subtype`, trimmed, as written.
    essence: &'a str,
    /// Everything after the first `;`, unparsed; empty without parameters.
    params: &'a str,
}

impl<'a> ContentType<'a> {
    /// Splits `value` into its media type and parameters; never fails.
    pub fn parse(value: &'a str) -> Self {
        let (essence, params) = value.split_once(';').unwrap_or((value, ""));
        Self {
            essence: essence.trim(),
            params,
        }
    }

    /// The media type (`type/subtype`) as written; empty if the value had none.
    pub fn essence(&self) -> &'a str {
        self.essence
    }

    /// Whether the media type is `essence`, in any case.
    pub fn is(&self, essence: &str) -> bool {
        self.essence.eq_ignore_ascii_case(essence)
    }

    /// The framing a `multipart/x-mixed-replace` (or `multipart/mixed`) type announces, with its
    /// boundary if it names one; `None` for any other type.
    pub fn multipart_framing(&self) -> Option<Framing> {
        let multipart = self.is("multipart/x-mixed-replace") || self.is("multipart/mixed");
        multipart.then(|| Framing::Multipart(self.boundary()))
    }

    /// The `boundary` parameter, as written, dashes included (the multipart splitter accepts
    /// `--b` and `----b` lines for `boundary=--b`); `None` if absent or empty.
    pub fn boundary(&self) -> Option<String> {
        self.param("boundary")
    }

    /// The first non-empty value of the parameter `name`.
    ///
    /// RFC 2045 parameters, read leniently: the name in any case, the value a token or a
    /// quoted string (with `\` escapes), other parameters around it, with or without spaces,
    /// and parameters without a value skipped.
    pub fn param(&self, name: &str) -> Option<String> {
        let mut rest = self.params;
        loop {
            rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
            if rest.is_empty() {
                return None;
            }
            let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
            let this_name = rest[..name_end].trim();
            rest = &rest[name_end..];
            let Some(after_eq) = rest.strip_prefix('=') else {
                continue; // a parameter without a value
            };
            let (value, after) = read_value(after_eq.trim_start());
            rest = after;
            if this_name.eq_ignore_ascii_case(name) && !value.is_empty() {
                return Some(value);
            }
        }
    }
}

/// Reads a parameter value, a quoted string or a token, from the start of `text`; returns it
/// and what follows it.
fn read_value(text: &str) -> (String, &str) {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(|c: char| c == ';' || c.is_ascii_whitespace());
        let (token, rest) = text.split_at(end.unwrap_or(text.len()));
        return (token.to_owned(), rest);
    };
    let mut unquoted = String::new();
    let mut end = quoted.len(); // an unclosed quote runs to the end
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => unquoted.extend(chars.next().map(|(_, escaped)| escaped)),
            '"' => {
                end = i + 1;
                break;
            }
            _ => unquoted.push(c),
        }
    }
    (unquoted, &quoted[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_parameter_accepts_quotes_case_and_extra_params() {
        let cases = [
            ("multipart/x-mixed-replace; boundary=ffmpeg", Some("ffmpeg")),
            ("multipart/x-mixed-replace;boundary=ffmpeg", Some("ffmpeg")),
            ("multipart/x-mixed-replace; BOUNDARY=Ab", Some("Ab")),
            (
                "multipart/x-mixed-replace; boundary=\"x y;z\"",
                Some("x y;z"),
            ),
            (
                "multipart/x-mixed-replace; boundary=\"a\\\"b\"; charset=x",
                Some("a\"b"),
            ),
            (
                "multipart/x-mixed-replace; charset=\"a;boundary=no\"; boundary=yes",
                Some("yes"),
            ),
            (
                "multipart/x-mixed-replace; charset=utf-8;boundary=b2 ; x=y",
                Some("b2"),
            ),
            (
                "multipart/x-mixed-replace; boundary = spaced",
                Some("spaced"),
            ),
            (
                "multipart/x-mixed-replace; flag; boundary=after-flag",
                Some("after-flag"),
            ),
            (
                "multipart/x-mixed-replace;boundary=--myboundary",
                Some("--myboundary"),
            ),
            ("multipart/x-mixed-replace", None),
            ("multipart/x-mixed-replace; boundary=", None),
            ("multipart/x-mixed-replace; boundary=\"\"", None),
            ("multipart/x-mixed-replace; notboundary=x", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                ContentType::parse(value).boundary().as_deref(),
                want,
                "{value}"
            );
        }
    }

    #[test]
    fn the_media_type_is_matched_in_any_case_without_its_parameters() {
        let jpeg = ContentType::parse(" Image/JPEG ; q=1");
        assert_eq!(jpeg.essence(), "Image/JPEG");
        assert!(jpeg.is("image/jpeg"));
        assert!(!jpeg.is("image/jpg"));
        assert_eq!(ContentType::parse("  ").essence(), "");
        assert_eq!(ContentType::parse("; boundary=b").essence(), "");
    }

    #[test]
    fn only_multipart_types_announce_multipart_framing() {
        let framing = |value| ContentType::parse(value).multipart_framing();
        assert_eq!(
            framing("Multipart/X-Mixed-Replace;boundary=\"cam\""),
            Some(Framing::Multipart(Some("cam".into())))
        );
        assert_eq!(framing("multipart/mixed"), Some(Framing::Multipart(None)));
        assert_eq!(framing("image/jpeg; boundary=b"), None);
        assert_eq!(framing("application/octet-stream"), None);
    }
}
