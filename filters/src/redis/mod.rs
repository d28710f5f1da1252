//! Redis: the `redis` protocol filter and what it knows about commands. The filter
//! (`filter`) turns each command into an op, applies rules and faults, and matches
//! replies to commands with the connection state in `session`; `command_table` names
//! commands and finds their keys; `stats` holds the per-listener counters. Frames are cut
//! and viewed by the RESP codec in `sluice_codecs::resp`.

pub mod cluster_slots;
pub mod command_table;
mod commands;
pub mod distribution;
mod filter;
pub mod ketama;
pub mod maglev;
pub mod merge;
pub mod routing;
mod session;
pub mod stats;

pub use filter::{RedisFilter, RedisListener};

#[cfg(test)]
mod tests;
