//! The configuration file: one TOML document whose sections belong to the crates that use them.
//!
//! `[reader]` is `herald_shared`'s, `[exporter]` the exporter's, `[announcer]` the announcer's;
//! this module only composes them, loads the file and turns a parse error into a message that
//! names the file, line and column. Every section and key is optional: an absent file section
//! means the built-in defaults, and running with no `--config` at all is the same as an empty file.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub log: LogConfig,
    pub reader: herald_shared::reader::ReaderConfig,
    pub exporter: herald_exporter::Config,
    pub announcer: herald_announcer::Config,
}

/// `[log]`: logging to standard error.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `debug`, `herald_announcer=debug,info`, …). The environment
    /// variable `IPVS_HERALD_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Load from `path`, or the built-in defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse TOML text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

    /// Checks serde cannot do, section by section.
    fn validate(&self) -> Result<(), String> {
        self.exporter.validate().map_err(|e| e.to_string())?;
        self.announcer.validate()?;
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(
            Config::parse(Path::new("x.toml"), "").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = Config::parse(
            Path::new("x.toml"),
            "[log]\nlevel = \"info\"\n  bogus = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("x.toml:3:3: "), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = Config::parse(Path::new("c.toml"), "[log]\nlevel = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:2:9: "), "{err}");
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
