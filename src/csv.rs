//! CSV cells, shared by every export (audit log, usage, cost).

use std::borrow::Cow;

/// Quotes one CSV field per RFC 4180: wrapped in double quotes, inner quotes doubled, when it
/// holds a comma, a quote, CR or LF (or starts/ends with a space, which some readers trim).
pub fn quote(field: &str) -> Cow<'_, str> {
    let needs_quotes =
        field.contains([',', '"', '\r', '\n']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// A text cell: a value a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR
/// first) gets a leading `'`, then the cell is quoted. Names and user agents come from
/// upstream or from unauthenticated requests; opening an export must not execute them.
pub fn text(field: &str) -> String {
    let neutralized = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{field}"))
    } else {
        Cow::Borrowed(field)
    };
    quote(&neutralized).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_plain_fields_alone_and_quotes_the_rest() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote("cr\r"), "\"cr\r\"");
        assert_eq!(quote(" padded"), "\" padded\"");
        assert_eq!(quote(""), "");
    }

    #[test]
    fn text_neutralizes_formulas() {
        assert_eq!(text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(text("alice"), "alice");
    }
}
