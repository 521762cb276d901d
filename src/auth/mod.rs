//! Local accounts, passwords, sessions, roles and CSRF.

pub mod accounts;
pub mod csrf;
pub mod oidc;
pub mod password;
pub mod roles;
pub mod session;
pub mod sso;
pub mod throttle;

pub use roles::{Permission, Role};
