//! Redis: what the `redis` protocol filter needs to know about commands. The filter
//! itself (request/reply correlation, ops, rules, stats) builds on this table and on the
//! RESP codec in `sluice_codecs::resp`.

pub mod command_table;
mod commands;
