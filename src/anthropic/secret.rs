//! The Admin API key, wrapped so that it cannot leak through logs, pages or error messages.

use std::fmt;

/// An Anthropic Admin API key (`sk-ant-admin…`).
///
/// `Debug` and `Display` print only `sk-ant-admin…[redacted]`; the type deliberately has no
/// `Serialize` implementation, so it cannot end up in JSON, a template or the database by
/// accident. The only way to read the secret is [`AdminKey::expose_secret`].
#[derive(Clone)]
pub struct AdminKey(String);

impl AdminKey {
    /// The public prefix every Admin API key starts with.
    pub const PREFIX: &'static str = "sk-ant-admin";

    /// Wraps a key. Surrounding whitespace (e.g. a trailing newline from a key file) is removed.
    pub fn new(key: String) -> Self {
        let trimmed = key.trim();
        if trimmed.len() == key.len() {
            AdminKey(key)
        } else {
            AdminKey(trimmed.to_owned())
        }
    }

    /// The secret itself. For the `x-api-key` request header only: never log, render, store or
    /// compare it anywhere else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the key has the shape of an Admin API key (`sk-ant-admin` prefix). A key without
    /// it will be refused by the Admin API.
    pub fn looks_like_admin_key(&self) -> bool {
        self.0.starts_with(Self::PREFIX)
    }

    fn redacted(&self) -> &'static str {
        if self.looks_like_admin_key() {
            "sk-ant-admin…[redacted]"
        } else {
            "[redacted]"
        }
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminKey({})", self.redacted())
    }
}

impl fmt::Display for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-ant-admin01-SuperSecretValue_abc123";

    #[test]
    fn debug_and_display_never_show_the_secret_part() {
        let key = AdminKey::new(SECRET.to_owned());
        let shown = [format!("{key}"), format!("{key:?}"), format!("{key:#?}")];
        for s in shown {
            assert!(!s.contains("SuperSecret"), "{s}");
            assert!(!s.contains("admin01"), "{s}");
            assert!(s.contains("[redacted]"), "{s}");
        }
        assert_eq!(key.to_string(), "sk-ant-admin…[redacted]");
    }

    #[test]
    fn a_key_without_the_admin_prefix_is_fully_redacted() {
        let key = AdminKey::new("sk-ant-api03-whatever".to_owned());
        assert_eq!(key.to_string(), "[redacted]");
        assert!(!key.looks_like_admin_key());
    }

    #[test]
    fn expose_secret_returns_the_trimmed_key() {
        let key = AdminKey::new(format!("  {SECRET}\n"));
        assert_eq!(key.expose_secret(), SECRET);
        assert!(key.looks_like_admin_key());
    }
}
