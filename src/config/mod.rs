//! Configuration: YAML in, a validated [`Config`] out.
//!
//! Two layers (DESIGN.md "Runtime"): `raw` mirrors the file with serde and rejects unknown
//! keys; `validate` turns it into typed values and reports every problem at once, each
//! prefixed with its path (`listeners[1].cluster: unknown cluster "cach"`). A config that
//! fails never half-starts anything.

mod raw;
pub mod units;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Serialize, Serializer};
use sluice_filters::policy::{self, LimitKind, Matcher, OnLimit, RateLimit, Rule};
use sluice_filters::Protocol;

/// One problem in a configuration, named by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub admin: AdminConfig,
    #[serde(serialize_with = "ser_duration")]
    pub drain_timeout: Duration,
    pub clusters: Vec<Arc<ClusterConfig>>,
    pub listeners: Vec<ListenerConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminConfig {
    pub address: SocketAddr,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterConfig {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    #[serde(serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
}

/// An upstream address as written and as resolved when the config was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub address: SocketAddr,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    #[serde(serialize_with = "ser_protocol")]
    pub protocol: Protocol,
    /// Index into [`Config::clusters`].
    #[serde(skip)]
    pub cluster_index: usize,
    pub cluster: String,
    #[serde(serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
    /// TCP: concurrent connections; UDP: concurrent sessions.
    pub max_connections: usize,
    pub rules: Vec<RuleConfig>,
    pub access_log: Option<AccessLogTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogTarget {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleConfig {
    #[serde(rename = "match")]
    pub matcher: MatchConfig,
    pub action: ActionConfig,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MatchConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub op: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_prefix: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_cidr: Vec<IpNet>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionConfig {
    Allow,
    Deny,
    RateLimit(RateLimitConfig),
}

#[derive(Debug, Clone, Serialize)]
pub struct RateLimitConfig {
    pub count: NonZeroU32,
    #[serde(serialize_with = "ser_duration")]
    pub period: Duration,
    pub burst: NonZeroU32,
    #[serde(serialize_with = "ser_limit_kind")]
    pub per: LimitKind,
    #[serde(rename = "action", serialize_with = "ser_on_limit")]
    pub on_limit: OnLimit,
}

impl RuleConfig {
    /// Builds the live rule, with fresh rate-limit state.
    pub fn build(&self) -> Rule {
        let m = &self.matcher;
        let matcher = Matcher {
            ops: m.op.clone(),
            targets: m.target.iter().map(|t| t.as_bytes().to_vec()).collect(),
            target_prefixes: m.target_prefix.iter().map(|t| t.as_bytes().to_vec()).collect(),
            client_cidrs: m.client_cidr.clone(),
            users: m.user.clone(),
            listeners: m.listener.clone(),
        };
        let action = match &self.action {
            ActionConfig::Allow => policy::Action::Allow,
            ActionConfig::Deny => policy::Action::Deny,
            ActionConfig::RateLimit(r) => {
                policy::Action::RateLimit(RateLimit::new(r.count, r.period, r.burst, r.per, r.on_limit))
            }
        };
        Rule { matcher, action }
    }
}

impl Config {
    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        validate::load(text)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                path: String::new(),
                message: format!("cannot read {}: {e}", path.display()),
            }])
        })?;
        Self::from_yaml(&text)
    }

    pub fn cluster(&self, listener: &ListenerConfig) -> &Arc<ClusterConfig> {
        &self.clusters[listener.cluster_index]
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&units::format_duration(*d))
}

fn ser_protocol<S: Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

fn ser_limit_kind<S: Serializer>(k: &LimitKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

fn ser_on_limit<S: Serializer>(o: &OnLimit, s: S) -> Result<S::Ok, S::Error> {
    match o {
        OnLimit::Reject => s.serialize_str("reject"),
        OnLimit::Delay { max_delay } => {
            s.collect_str(&format_args!("delay (max_delay {})", units::format_duration(*max_delay)))
        }
    }
}

#[cfg(test)]
mod tests;
