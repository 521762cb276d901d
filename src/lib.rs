//! Orgkeeper: a self-hosted dashboard for the administrators of an Anthropic organization.
//!
//! Requests flow one way: `web` (extract, call one service, render) → `service` (decide,
//! audit, change) → (`audit`, `org` cached reads, `anthropic` client) → the Admin API.
//! Background work lives in `jobs` and calls the same services as the system. The
//! `simulator` shares no state with the dashboard, only the HTTP contract.

pub mod analytics_store;
pub mod anthropic;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contract;
pub mod csv;
pub mod db;
pub mod jobs;
pub mod labels;
pub mod memory;
pub mod money;
pub mod org;
pub mod scim;
pub mod server;
pub mod service;
pub mod simulator;
pub mod usage_store;
pub mod web;
