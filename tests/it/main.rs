//! The integration tests: one binary (linking the crate once), one module per area. Every
//! test starts the real server on a loopback port with a fresh SQLite file and the simulator
//! over real HTTP; the browser module drives headless Chromium.

// Tests arrange data against real time (the simulator's and the database's); the rule that
// every read of the time goes through the movable clock is for the product's code.
#![allow(clippy::disallowed_methods)]

mod support;

mod account_cache;
mod activity;
mod audit_chain;
mod audit_review;
mod authorization;
mod browser;
mod browser_harness;
mod cli;
mod client_contract;
mod confirmations;
mod cost_people;
mod crash;
mod follow;
mod foundation;
mod gateway;
mod hardening;
mod keys;
mod layers;
mod limits;
mod members_invites;
mod model;
mod probe;
mod reconcile;
mod scim;
mod scim_compliance;
mod sdk_compat;
mod services;
mod simulator;
mod simulator_pacing;
mod sso;
mod tokens;
mod usage;
mod workspaces;
