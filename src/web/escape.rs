//! The escaper of every HTML template (`askama.toml` names it): askama's HTML escaping, plus
//! characters that change how text reads without being seen — bidirectional overrides and
//! isolates, zero-width and other control characters — written out visibly as `[U+202E]`.
//! Names come from the organization (keys, workspaces, people): a key named `\u{202E}gnp.exe`
//! would otherwise read "exe.png".

use std::fmt::{self, Write};

#[derive(Clone, Copy, Debug, Default)]
pub struct VisibleHtml;

/// Characters shown by their code instead of being rendered.
fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // Zero-width space, word joiner, byte-order mark.
        | '\u{200b}' | '\u{2060}' | '\u{feff}')
}

fn escaped(c: char) -> Option<&'static str> {
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
        let mut start = 0;
        for (at, c) in string.char_indices() {
            let replaced = escaped(c);
            if replaced.is_none() && !is_hidden(c) {
                continue;
            }
            dest.write_str(&string[start..at])?;
            match replaced {
                Some(entity) => dest.write_str(entity)?,
                None => write!(dest, "[U+{:04X}]", c as u32)?,
            }
            start = at + c.len_utf8();
        }
        dest.write_str(&string[start..])
    }
}

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
