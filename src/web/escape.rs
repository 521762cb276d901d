//! The escaper of every HTML template (`askama.toml` names it): askama's HTML escaping, plus
//! characters that change how text reads without being seen — bidirectional overrides and
//! isolates, zero-width and other control characters — written out visibly as `[U+202E]`.
//! Names come from the organization (keys, workspaces, people): a key named `\u{202E}gnp.exe`
//! would otherwise read "exe.png".

use std::fmt::{self, Write};

#[derive(Clone, Copy, Debug, Default)]
pub struct VisibleHtml;

/// Characters shown by their code instead of being rendered.
const fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // Zero-width space, word joiner, byte-order mark.
        | '\u{200b}' | '\u{2060}' | '\u{feff}')
}

const fn escaped(c: char) -> Option<&'static str> {
    Some(match c {
        '&' => "&#38;",
        '<' => "&#60;",
        '>' => "&#62;",
        '"' => "&#34;",
        '\'' => "&#39;",
        _ => return None,
    })
}

impl askama::filters::Escaper for VisibleHtml {
    fn write_escaped_str<W: Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        // Byte by byte: almost everything written is plain ASCII, which needs one table look;
        // only a byte that starts a multi-byte character is decoded.
        let bytes = string.as_bytes();
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            let b = bytes[at];
            let c = if b < 0x80 {
                if !NEEDS_WORK[b as usize] {
                    at += 1;
                    continue;
                }
                b as char
            } else {
                let c = string[at..].chars().next().unwrap_or_default();
                if !is_hidden(c) {
                    at += c.len_utf8();
                    continue;
                }
                c
            };
            dest.write_str(&string[start..at])?;
            match escaped(c) {
                Some(entity) => dest.write_str(entity)?,
                None => write!(dest, "[U+{:04X}]", c as u32)?,
            }
            at += c.len_utf8();
            start = at;
        }
        dest.write_str(&string[start..])
    }
}

/// The ASCII bytes that are escaped or shown by their code.
const NEEDS_WORK: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = is_hidden(b as u8 as char) || escaped(b as u8 as char).is_some();
        b += 1;
    }
    table
};

/// `text` escaped as every template escapes it, for the few fragments built without one.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing to a String cannot fail.
    let _ = askama::filters::Escaper::write_escaped_str(&VisibleHtml, &mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::filters::Escaper;

    fn escape(text: &str) -> String {
        let mut out = String::new();
        VisibleHtml.write_escaped_str(&mut out, text).unwrap();
        out
    }

    #[test]
    fn markup_is_escaped_and_hidden_characters_are_shown_by_their_code() {
        assert_eq!(
            escape("<b>\"a\" & 'b'</b>"),
            "&#60;b&#62;&#34;a&#34; &#38; &#39;b&#39;&#60;/b&#62;"
        );
        assert_eq!(escape("\u{202E}gnp.exe"), "[U+202E]gnp.exe");
        // Visible multi-byte characters pass unchanged, between ones that are not.
        assert_eq!(
            escape("café ✓\u{200B}<Zoë>\u{7f}🚀"),
            "café ✓[U+200B]&#60;Zoë&#62;[U+007F]🚀"
        );
        assert_eq!(
            escape("a\u{200B}b\u{0}c\u{2066}"),
            "a[U+200B]b[U+0000]c[U+2066]"
        );
        // Text in any script, emoji sequences and line breaks are left alone.
        for kept in ["Zoë", "مرحبا", "שלום", "👩‍💻", "line\nbreak\ttab"] {
            assert_eq!(escape(kept), kept);
        }
    }
}
