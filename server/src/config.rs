//! Configuration: command-line flags, each with an environment variable of the same meaning.

use clap::{Parser, ValueEnum};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

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

    /// Seconds a client may stay silent (no message, no answer to the server's pings) before it is
    /// disconnected. The server pings every third of this.
    #[arg(long, env = "MINIM_CLIENT_TIMEOUT_SECS", default_value_t = 45, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub client_timeout_secs: u64,

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

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_url", &self.public_url)
            .field("client_timeout_secs", &self.client_timeout_secs)
            .field("web_dir", &self.web_dir)
            .field("log_format", &self.log_format)
            .finish()
    }
}
