//! Configuration: command-line flags, each with an environment variable of the same meaning.

use clap::{Parser, ValueEnum};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// minim: a real-time Lean Coffee board for manager peer-support groups.
#[derive(Parser, Clone)]
#[command(name = "minim", version, about, long_about = None)]
pub struct Config {
    /// Address and port to listen on. Port 0 picks a free port (the log says which).
    #[arg(long, env = "MINIM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the embedded event store and the generated signing secret.
    #[arg(long, env = "MINIM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Secret that signs session tokens (at least 32 characters). When not given, one is generated
    /// once and kept in `<data-dir>/secret.key`. Every node serving the same boards needs the same.
    #[arg(long, env = "MINIM_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,

    /// The URL people reach this service at, used to build the links handed out (e.g.
    /// `https://minim.example.org`). Defaults to `http://<bind address>`.
    #[arg(long, env = "MINIM_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Origins, besides the public URL's, whose pages may open a WebSocket to this service
    /// (comma-separated, e.g. `https://intranet.example.org`). Pages of any other site are refused.
    #[arg(long, env = "MINIM_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Open WebSocket connections allowed from one client address (a whole office may share one).
    #[arg(long, env = "MINIM_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub max_connections_per_address: u32,

    /// Behind a reverse proxy: the request header it puts the client's address in (e.g.
    /// `X-Real-IP`). Set it only when every request comes through that proxy: a client reaching the
    /// node directly could put any address there.
    #[arg(long, env = "MINIM_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<actix_web::http::header::HeaderName>,

    /// How long a session lasts after joining (e.g. `24h`); a connection is closed when its session
    /// ends, and the person joins again from the link.
    #[arg(long, env = "MINIM_SESSION_TTL", default_value = "24h", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// Seconds a client may stay silent (no message, no answer to the server's pings) before it is
    /// disconnected. The server pings every third of this.
    #[arg(long, env = "MINIM_CLIENT_TIMEOUT_SECS", default_value_t = 45, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub client_timeout_secs: u64,

    /// Redis to keep boards in and fan events out through, so that several nodes can serve the same
    /// boards (e.g. `redis://redis:6379/`; `rediss://` for TLS). Without it, boards live in the
    /// data directory and one node serves them.
    #[arg(long, env = "MINIM_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<RedisUrl>,

    /// How long a board's content is kept after its last change (for a closed board: after it was
    /// closed), e.g. `7d`, `12h`, `30m`, `45s`. Then it is deleted, from the data directory or
    /// from Redis, and its links answer that it was deleted.
    #[arg(long, env = "MINIM_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// Worker threads serving connections and boards; defaults to the number of cores. Nodes that
    /// share a machine do better with the cores divided between them (two nodes on two cores: one
    /// each) than with every node starting a worker per core, as a board's events reach sessions
    /// on other workers through cross-thread wake-ups (BENCHMARKS.md: about a tenth less CPU).
    #[arg(long, env = "MINIM_WORKERS")]
    pub workers: Option<std::num::NonZeroUsize>,

    /// Directory of the built browser app (`scripts/build-client` writes `target/web`).
    #[arg(long, env = "MINIM_WEB_DIR", default_value = "target/web")]
    pub web_dir: PathBuf,

    /// Log format: `text` for people, `json` for log collectors. Levels come from `RUST_LOG`
    /// (default `info`).
    #[arg(long, env = "MINIM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret given on the command line or in the environment. `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Secret, String> {
        if s.len() < 32 {
            return Err("the secret must be at least 32 characters long".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A Redis URL. It may carry a password, so `Debug` shows only its scheme.
#[derive(Clone)]
pub struct RedisUrl(pub String);

impl std::str::FromStr for RedisUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<RedisUrl, String> {
        if !(s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("redis+unix://")) {
            return Err("expected a redis://, rediss:// or redis+unix:// URL".into());
        }
        Ok(RedisUrl(s.to_owned()))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.split("://").next().unwrap_or("redis");
        write!(f, "RedisUrl({scheme}://<redacted>)")
    }
}

/// A duration written as a whole number and a unit: `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| format!("expected a number and a unit (s, m, h, d), not {text:?}"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("expected a unit of s, m, h or d after the number, not {unit:?}")),
    };
    match number.checked_mul(seconds) {
        Some(0) => Err("the duration must be more than zero".into()),
        Some(total) => Ok(Duration::from_secs(total)),
        None => Err("that duration is too long".into()),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_url", &self.public_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_connections_per_address", &self.max_connections_per_address)
            .field("client_ip_header", &self.client_ip_header)
            .field("session_ttl", &self.session_ttl)
            .field("client_timeout_secs", &self.client_timeout_secs)
            .field("redis_url", &self.redis_url)
            .field("retention", &self.retention)
            .field("web_dir", &self.web_dir)
            .field("log_format", &self.log_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "7", "d", "0s", "-1d", "1.5h", "7 d", "7w", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn debug_hides_secrets_and_redis_passwords() {
        let config = Config::parse_from([
            "minim",
            "--secret",
            "0123456789abcdef0123456789abcdef-secret",
            "--redis-url",
            "redis://:hunter2-password@redis:6379/",
        ]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("RedisUrl(redis://<redacted>)"), "{shown}");
        assert!("http://redis:6379".parse::<RedisUrl>().is_err());
    }
}
