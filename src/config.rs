//! The configuration file: one TOML document whose sections belong to the crates that use them.
//!
//! `[reader]` is `herald_shared`'s, `[exporter]` the exporter's, `[announcer]` the announcer's;
//! this module only composes them, loads the file and turns a parse error into a message that
//! names the file, line and column. Every section and key is optional: an absent file section
//! means the built-in defaults, and running with no `--config` at all is the same as an empty file.
//!
//! [`Config::load`] is the one gate of `check-config`, `run` and SIGHUP: besides the file's own
//! content it checks what `run` opens at start (the web configuration file with its
//! certificates, key and CA file, the kernel backend's network namespace) and the log filter,
//! so that any configuration `check-config` accepts, `run` starts with, and any it refuses,
//! `run` refuses with the same message.

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

/// The largest configuration file read (a real one is a few KiB; this bounds what a wrong
/// path, such as a log file, can make the daemon allocate).
pub const MAX_CONFIG_FILE: u64 = 16 << 20;

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
    /// `error` is part of the message and deliberately not a `source`: SIGHUP logs the whole
    /// error chain, which would repeat it.
    #[error("{path}: {error}")]
    Invalid {
        path: PathBuf,
        error: Box<InvalidSection>,
    },
    #[error("{variable}: {error}")]
    Environment {
        variable: &'static str,
        error: FilterError,
    },
}

/// What is wrong with a loaded configuration, by section; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum InvalidSection {
    #[error("log.level: {0}")]
    LogLevel(FilterError),
    #[error("{0}")]
    Reader(herald_shared::reader::ReaderConfigError),
    #[error("{0}")]
    Exporter(herald_exporter::ConfigError),
    #[error("exporter.web_config_file: {0}")]
    WebConfig(herald_exporter::webconfig::WebConfigError),
    #[error("{0}")]
    Announcer(herald_announcer::ConfigError),
}

/// A log filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad log filter {filter:?}: {error}")]
pub struct FilterError {
    filter: String,
    error: tracing_subscriber::filter::ParseError,
}

/// The environment variable that overrides `[log] level` (read by `daemon::init_tracing`).
pub const LOG_ENV: &str = "IPVS_HERALD_LOG";

/// Parse a log filter as the daemon does when it sets up logging.
pub fn parse_filter(filter: &str) -> Result<tracing_subscriber::EnvFilter, FilterError> {
    tracing_subscriber::EnvFilter::try_new(filter).map_err(|error| FilterError {
        filter: filter.to_string(),
        error,
    })
}

impl Config {
    /// Load from `path`, or the built-in defaults when `path` is `None`, and check everything
    /// `run` would open or parse at start: what `check-config`, `run` and SIGHUP use. Only a
    /// regular file of at most [`MAX_CONFIG_FILE`] bytes is read: a FIFO, a device or a
    /// directory is refused at once, without waiting for a writer.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let cfg = Self::load_content(path)?;
        if let Some(path) = path {
            cfg.check_files().map_err(|error| ConfigError::Invalid {
                path: path.to_path_buf(),
                error: Box::new(error),
            })?;
        }
        // `[log] level` is checked with the file; the variable that overrides it, here.
        if let Ok(filter) = std::env::var(LOG_ENV) {
            if !filter.is_empty() {
                parse_filter(&filter).map_err(|error| ConfigError::Environment {
                    variable: LOG_ENV,
                    error,
                })?;
            }
        }
        Ok(cfg)
    }

    /// Load and validate the file's own content only, without opening the files it names: for
    /// the commands that talk to a running daemon or only read IPVS (`dump`, `drain`,
    /// `undrain`, `status`), which must work for an operator who cannot read the TLS key.
    pub fn load_content(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes =
            herald_announcer::files::read_regular(path, MAX_CONFIG_FILE).map_err(read_err)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text ({})", e.utf8_error()),
            ))
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
        cfg.validate().map_err(|error| ConfigError::Invalid {
            path: path.to_path_buf(),
            error: Box::new(error),
        })?;
        Ok(cfg)
    }

    /// Checks serde cannot do, section by section.
    fn validate(&self) -> Result<(), InvalidSection> {
        parse_filter(&self.log.level).map_err(InvalidSection::LogLevel)?;
        self.reader.validate().map_err(InvalidSection::Reader)?;
        self.exporter.validate().map_err(InvalidSection::Exporter)?;
        self.announcer
            .validate()
            .map_err(InvalidSection::Announcer)?;
        Ok(())
    }

    /// The files `run` opens at start, opened and parsed the same way, changing nothing.
    fn check_files(&self) -> Result<(), InvalidSection> {
        self.exporter
            .web_config()
            .map_err(InvalidSection::WebConfig)?;
        self.announcer
            .check_files()
            .map_err(InvalidSection::Announcer)?;
        Ok(())
    }

    /// What is valid but probably not meant: `check-config` prints these on standard error,
    /// `run` logs them at start and on each reload.
    pub fn warnings(&self) -> Vec<String> {
        self.announcer.warnings()
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

    fn example(name: &str) -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn documented_defaults_are_the_built_in_defaults() {
        assert_eq!(example("ipvs-herald.toml"), Config::default());
    }

    /// The commented `[[announcer.vip_groups]]` reference in config/ipvs-herald.toml, with its
    /// comment markers taken off, parses and equals a group given only its name and prefixes:
    /// every default it documents is the built-in one.
    #[test]
    fn documented_vip_group_keys_are_the_built_in_defaults() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ipvs-herald.toml"),
        )
        .unwrap();
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "# [[announcer.vip_groups]]")
            .take_while(|l| l.starts_with('#'))
            .filter(|l| !l.starts_with("# #"))
            .map(|l| l.trim_start_matches('#').trim_start())
            .collect();
        assert!(block.len() > 15, "no commented VIP group found: {block:?}");
        let bgp = "[announcer.bgp]\nrouter_id = \"198.51.100.1\"\nlocal_as = 65000\n";
        let documented =
            Config::parse(Path::new("doc.toml"), &format!("{bgp}{}", block.join("\n")))
                .unwrap_or_else(|e| panic!("{e}"));
        let minimal = Config::parse(
            Path::new("min.toml"),
            &format!("{bgp}[[announcer.vip_groups]]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\", \"2001:db8::10/128\"]\n"),
        )
        .unwrap();
        assert_eq!(
            documented.announcer.vip_groups,
            minimal.announcer.vip_groups
        );
    }

    #[test]
    fn all_active_example_parses_and_validates() {
        let c = example("examples/all-active.toml");
        let bgp = c.announcer.bgp.as_ref().unwrap();
        assert_eq!(bgp.local_as, 4_200_000_021);
        assert_eq!(bgp.peers.len(), 2);
        assert_eq!(bgp.peers[0].ttl_security, Some(1));
        assert_eq!(c.announcer.vip_groups.len(), 2);
        let web = &c.announcer.vip_groups[0];
        assert_eq!(web.interval, std::time::Duration::from_millis(200));
        assert_eq!(web.pool.up_count, Some(3));
        assert_eq!(web.up.local_pref, Some(200));
        assert_eq!(c.exporter.service_names.len(), 3);
    }

    #[test]
    fn bgp_every_option_example_parses_and_validates() {
        let c = example("examples/bgp-every-option.toml");
        let bgp = c.announcer.bgp.as_ref().unwrap();
        assert_eq!(bgp.listen.port(), 1179);
        let (a, rr) = (&bgp.peers[0], &bgp.peers[1]);
        assert_eq!(a.keepalive, Some(3));
        assert_eq!(a.md5_password.as_deref(), Some("change-me"));
        assert!(a.graceful_restart.is_some());
        assert!(rr.passive);
        assert_eq!(rr.interface.as_deref(), Some("eth1"));
        assert_eq!(c.announcer.drain_time, std::time::Duration::from_secs(45));
    }

    #[test]
    fn ospf_example_parses_and_validates() {
        let c = example("examples/ospf-kernel.toml");
        assert_eq!(c.announcer.backend, herald_announcer::BackendKind::Kernel);
        assert_eq!(c.announcer.vip_groups[0].services.len(), 3);
    }

    #[test]
    fn vip_groups_without_a_backend_are_refused() {
        let err = Config::parse(
            Path::new("x.toml"),
            "[[announcer.vip_groups]]\nname = \"w\"\nprefixes = [\"192.0.2.1/32\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no [announcer.bgp] section"), "{err}");
    }

    #[test]
    fn non_regular_and_huge_files_are_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("herald-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let t0 = std::time::Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "FIFO"),
            (dir.as_path(), "directory"),
            (Path::new("/dev/zero"), "character device"),
        ] {
            let e = Config::load(Some(path)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "cannot read config file {}: it is a {kind}, not a regular file",
                    path.display()
                )
            );
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
        let big = dir.join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_CONFIG_FILE + 1).unwrap();
        let e = Config::load(Some(&big)).unwrap_err().to_string();
        assert!(e.contains("more than the 16777216 bytes allowed"), "{e}");
        std::fs::write(&big, b"[log]\nlevel = \"\xff\"\n").unwrap();
        let e = Config::load(Some(&big)).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_log_filter_is_refused_with_the_key() {
        let err = Config::parse(Path::new("x.toml"), "[log]\nlevel = \"info,herald=loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml: log.level: bad log filter"),
            "{err}"
        );
        Config::parse(
            Path::new("x.toml"),
            "[log]\nlevel = \"herald_announcer=debug,info\"\n",
        )
        .unwrap();
    }

    #[test]
    fn reader_values_are_validated() {
        let err = Config::parse(
            Path::new("x.toml"),
            "[reader]\ntimeout = \"500000000000y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("x.toml: reader.timeout: "), "{err}");
    }

    /// `load` opens the files `run` opens; `load_content` (the client commands) does not.
    #[test]
    fn load_checks_the_web_config_file_and_load_content_does_not() {
        let dir = std::env::temp_dir().join(format!("herald-config-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        let web = dir.join("missing-web.toml");
        std::fs::write(&path, format!("[exporter]\nweb_config_file = {web:?}\n")).unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: exporter.web_config_file: ", path.display()))
                && err.contains("missing-web.toml"),
            "{err}"
        );
        assert!(Config::load_content(Some(&path)).is_ok());
        std::fs::write(&web, "").unwrap();
        Config::load(Some(&path)).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
