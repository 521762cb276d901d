//! The house's one direction (issue 20), checked on the source itself so it stays true:
//! web/ only translates HTTP — no SQL, no audit writes, no calls on the Admin API client, no
//! wall-clock reads (the clock is `crate::clock`) — and no lower layer imports a higher one.

use std::path::{Path, PathBuf};

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut out = Vec::new();
    if root.is_dir() {
        walk(&root, &mut out);
    } else {
        let file = root.with_extension("rs");
        out.push((file.clone(), std::fs::read_to_string(&file).unwrap()));
    }
    out
}

/// Every line of these sources that holds one of `patterns`, outside comments.
fn offending(dirs: &[&str], patterns: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for dir in dirs {
        for (path, text) in sources(dir) {
            // Unit tests below `#[cfg(test)]` may reach across layers to arrange things.
            let code_part = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code_part.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for pattern in patterns {
                    if code.contains(pattern) {
                        found.push(format!("{}:{}: {pattern}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn web_only_translates_http() {
    let found = offending(
        &["web", "api", "scim"],
        &[
            "sqlx::query",
            "QueryBuilder",
            ".append(",
            "NewEntry",
            "local_change",
            "Utc::now",
            "SystemTime::now",
            ".api()",
            "state.db",
        ],
    );
    assert!(
        found.is_empty(),
        "web/ does more than translate HTTP:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_lower_layer_imports_a_higher_one() {
    let higher = [
        "crate::service",
        "crate::web",
        "crate::jobs",
        "crate::server",
        "crate::cli",
    ];
    let found = offending(
        &[
            "audit",
            "auth",
            "org",
            "anthropic",
            "clock",
            "config",
            "db",
            "money",
            "labels",
            "usage_store",
            "analytics_store",
        ],
        &higher,
    );
    assert!(
        found.is_empty(),
        "a lower layer imports a higher one:\n{}",
        found.join("\n")
    );
    let found = offending(&["config"], &["crate::simulator"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The simulator stands for Anthropic: it shares only the HTTP contract (and its types).
    let found = offending(
        &["simulator"],
        &[
            "crate::web",
            "crate::service",
            "crate::org",
            "crate::audit",
            "crate::auth",
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}
