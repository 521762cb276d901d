//! Typed client for the Anthropic Admin API.
