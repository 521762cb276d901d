//! Orgkeeper: a self-hosted dashboard for the administrators of an Anthropic organization.
//!
//! Requests flow one way: `web` → services → (`audit`, `cache`, `anthropic`). The `simulator`
//! shares no state with the dashboard, only the HTTP contract.

pub mod anthropic;
pub mod audit;
pub mod auth;
pub mod config;
pub mod csv;
pub mod db;
pub mod org;
pub mod server;
pub mod simulator;
pub mod usage_store;
pub mod web;
