//! The part of SCIM's filter language identity providers use to find someone (RFC 7644
//! §3.4.2.2): `attribute eq value`, joined by `and`. Okta and Entra ID send nothing else;
//! anything else is refused with `invalidFilter` rather than misread.

/// One `attribute eq value` condition: the attribute lower-cased, with a value filter such as
/// `emails[type eq "work"].value` reduced to `emails.value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub attribute: String,
    pub value: String,
}

/// Parses a filter into conditions that must all hold.
pub fn parse(filter: &str) -> Result<Vec<Condition>, String> {
    let tokens = tokenize(filter)?;
    let mut conditions = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        let [Token::Word(attribute), Token::Word(op), value, tail @ ..] = rest else {
            return Err(format!("Only `attribute eq \"value\"` conditions joined by `and` are supported, not: {filter}"));
        };
        if !op.eq_ignore_ascii_case("eq") {
            return Err(format!(
                "Only the `eq` operator is supported (and `and` between conditions), not `{op}`."
            ));
        }
        let value = match value {
            Token::Quoted(v) | Token::Word(v) => v.clone(),
        };
        conditions.push(Condition {
            attribute: attribute_path(attribute),
            value,
        });
        match tail {
            [] => return Ok(conditions),
            [Token::Word(and), more @ ..] if and.eq_ignore_ascii_case("and") => rest = more,
            _ => {
                return Err(format!(
                    "Only `and` may join conditions (no `or`, `not` or parentheses): {filter}"
                ))
            }
        }
    }
}

/// `emails[type eq "work"].value` → `emails.value`; `name.givenName` → `name.givenname`; a
/// schema URN prefix is dropped.
fn attribute_path(raw: &str) -> String {
    let mut path = String::new();
    let mut depth = 0;
    for c in raw.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => path.push(c),
            _ => {}
        }
    }
    let path = path.to_lowercase();
    match path.rfind(':') {
        Some(at) if path.starts_with("urn:") => path[at + 1..].to_owned(),
        _ => path,
    }
}

#[derive(Debug)]
enum Token {
    Word(String),
    Quoted(String),
}

fn tokenize(filter: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => return Err("The filter ends inside a quoted value.".into()),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("The filter ends inside a quoted value.".into()),
                }
            }
            tokens.push(Token::Quoted(value));
        } else {
            // A word runs to the next space outside brackets (a value filter has spaces).
            let mut word = String::new();
            let mut depth = 0;
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() && depth == 0 {
                    break;
                }
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(attribute: &str, value: &str) -> Condition {
        Condition {
            attribute: attribute.into(),
            value: value.into(),
        }
    }

    #[test]
    fn reads_what_okta_and_entra_send() {
        assert_eq!(
            parse(r#"userName eq "test.user@okta.local""#).unwrap(),
            vec![one("username", "test.user@okta.local")]
        );
        assert_eq!(
            parse("externalId eq jyoung").unwrap(),
            vec![one("externalid", "jyoung")]
        );
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "a@b.co""#).unwrap(),
            vec![one("emails.value", "a@b.co")]
        );
        assert_eq!(
            parse(r#"displayName EQ "Eng \"core\"" and externalId eq "x""#).unwrap(),
            vec![one("displayname", "Eng \"core\""), one("externalid", "x")]
        );
        assert_eq!(
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#).unwrap(),
            vec![one("username", "a")]
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_instead_of_guessing() {
        assert!(parse(r#"userName co "a""#).is_err());
        assert!(parse(r#"userName eq "a" or userName eq "b""#).is_err());
        assert!(parse(r#"userName eq "a"#).is_err());
        assert!(parse("userName").is_err());
        assert!(parse("").is_err());
    }
}
