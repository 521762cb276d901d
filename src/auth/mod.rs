//! Local accounts, passwords, sessions, roles, sign-in throttles and single sign-on.

pub mod account_cache;
pub mod accounts;
pub mod oidc;
pub mod password;
pub mod roles;
pub mod session;
pub mod session_store;
pub mod sso;
pub mod throttle;
pub mod tokens;

pub use roles::{Permission, Role};
