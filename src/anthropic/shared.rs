//! Shared strings for the ids and type names that repeat across the organization's lists.
//!
//! Every key names its workspace and its creator, and every membership its person and
//! workspace: on an organization of 200,000 keys and 250,000 memberships, one heap copy of
//! each id per mention was about 60 MB. Fields read through [`de`] share one copy per distinct
//! value instead (16 bytes a mention). [`purge`] forgets the values nothing holds any more;
//! the sync calls it when it gives memory back.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::{Deserializer, Visitor};

/// A string shared by every mention of the same value.
pub type Shared = Arc<str>;

/// One copy of each value it was given.
#[derive(Default)]
pub struct Interner(HashSet<Shared>);

impl Interner {
    /// The shared copy of `value`.
    pub fn get(&mut self, value: &str) -> Shared {
        if let Some(shared) = self.0.get(value) {
            return shared.clone();
        }
        let shared: Shared = value.into();
        self.0.insert(shared.clone());
        shared
    }
}

fn table() -> std::sync::MutexGuard<'static, Interner> {
    static TABLE: OnceLock<Mutex<Interner>> = OnceLock::new();
    TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The process's shared copy of `value`.
pub fn intern(value: &str) -> Shared {
    table().get(value)
}

/// Forgets the values that only the process's table still holds.
pub fn purge() {
    let mut table = table();
    table.0.retain(|shared| Arc::strong_count(shared) > 1);
    table.0.shrink_to_fit();
}

struct SharedVisitor;

impl Visitor<'_> for SharedVisitor {
    type Value = Shared;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Shared, E> {
        Ok(intern(value))
    }
}

/// `#[serde(deserialize_with = "shared::de")]`: reads a string as its shared copy.
pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Shared, D::Error> {
    d.deserialize_str(SharedVisitor)
}

/// [`de`] for an optional (nullable) string.
pub fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Shared>, D::Error> {
    struct OptVisitor;
    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Shared>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            de(d).map(Some)
        }
    }
    d.deserialize_option(OptVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy_until_nothing_holds_them() {
        #[derive(serde::Deserialize)]
        struct Row {
            #[serde(deserialize_with = "de")]
            id: Shared,
            #[serde(default, deserialize_with = "de_opt")]
            other: Option<Shared>,
        }
        let rows: Vec<Row> = serde_json::from_str(
            r#"[{"id": "wrkspc_shared_test", "other": null}, {"id": "wrkspc_shared_test", "other": "x_shared_test"}]"#,
        )
        .unwrap();
        assert!(Arc::ptr_eq(&rows[0].id, &rows[1].id));
        assert_eq!(rows[0].other, None);
        assert_eq!(rows[1].other.as_deref(), Some("x_shared_test"));
        drop(rows);
        purge();
        let table = table();
        assert!(!table.0.contains("wrkspc_shared_test"));
        assert!(!table.0.contains("x_shared_test"));
    }
}
