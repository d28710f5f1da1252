//! Raw bytes into `sluice::Config::from_yaml`: the YAML parser, the path-reporting
//! deserializer and every validation rule must answer any text with `Ok` or `Err`, never a
//! panic, a hang or a stack overflow. When it is `Ok`, the config must do what the runtime
//! does with it without panicking (see `sluice_fuzz::exercise_config`: `/config_dump`
//! JSON, cluster lookup, building and evaluating each listener's rules).
//!
//! Inputs that are not UTF-8 are skipped (`from_file` reads with `read_to_string`, which
//! rejects them before the loader sees them).
//!
//! DNS: the loader resolves cluster endpoints with `ToSocketAddrs`, i.e. getaddrinfo for
//! `host:port` when the host is not an IP literal. There is no network here and a lookup
//! costs milliseconds to seconds, so an input is skipped when one of its endpoints would be
//! looked up. That is decided precisely, not by a substring test: the text is parsed with
//! the loader's own parser (serde-saphyr into `serde_json::Value`) and every string under
//! `clusters[*].endpoints` is checked with `sluice_fuzz::endpoint_needs_dns`. Texts that do
//! not parse, and endpoints that are IP literals or malformed, still run in full.
//! `config_structured` covers the same loader from the other end: well-formed YAML built
//! from structured input, to reach deep validation quickly.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if sluice_fuzz::yaml_needs_dns(text) {
        return;
    }
    match sluice::Config::from_yaml(text) {
        Ok(config) => sluice_fuzz::exercise_config(&config),
        // The message printed at startup and returned by a reload.
        Err(errors) => assert!(!errors.0.is_empty() && !errors.to_string().is_empty()),
    }
});
