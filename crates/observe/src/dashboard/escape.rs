//! HTML escaping for everything the dashboard did not write itself: names and messages from the
//! database, the SLO spec and the check catalog. One function, used by both the page and the SVG
//! (inline SVG is parsed by the HTML parser, so the same escaping applies).

use std::fmt;

/// Text escaped for an HTML element or a double-quoted attribute.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Shorthand for `Escaped(text)` in `format!` arguments.
pub fn escape(text: &str) -> Escaped<'_> {
    Escaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn leaves_plain_text_and_multibyte_characters_alone() {
        assert_eq!(
            escape("read-latency ≤ 40 ms").to_string(),
            "read-latency ≤ 40 ms"
        );
        assert_eq!(escape("").to_string(), "");
        assert_eq!(escape("&amp;").to_string(), "&amp;amp;");
    }
}
