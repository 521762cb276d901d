//! An in-memory simulator of the Anthropic Admin API, served over real HTTP.
