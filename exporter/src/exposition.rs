//! Exposition formats: content negotiation between OpenMetrics 1.0.0 and the Prometheus text
//! format 0.0.4, and conversion of prometheus-client's OpenMetrics output into the latter. With
//! the `testing` feature (tests and the lab, never a release build) also the oracles: rendering
//! a fixed snapshot, a sample parser and a series checker usable over any exposition.

use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics text format served.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format served.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`.
    Prometheus,
}

impl Format {
    /// The `Content-Type` header value for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
        }
    }
}

/// Choose the format from an `Accept` header: OpenMetrics when it is acceptable (no version or
/// version 1.0.0) with a quality at least that of `text/plain`, else the Prometheus text format.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Prometheus;
    };
    let mut om_q = 0.0f64;
    let mut text_q = 0.0f64;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f64;
        let mut version: Option<String> = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => {
                        q = v
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|q| q.is_finite())
                            .unwrap_or(0.0)
                    }
                    "version" => version = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if version.as_deref().is_none_or(|v| v == "1.0.0") => {
                om_q = om_q.max(q);
            }
            "text/plain" | "text/*" | "*/*" => text_q = text_q.max(q),
            _ => {}
        }
    }
    if om_q > 0.0 && om_q >= text_q {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

/// Encode a whole registry in `format`.
pub fn encode_registry(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut out = Vec::with_capacity(64 * 1024);
    encode_registry_to(registry, format, &mut out).map_err(|_| std::fmt::Error)?;
    String::from_utf8(out).map_err(|_| std::fmt::Error)
}

/// Why a streamed encoding stopped.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A collector or the text encoder failed.
    #[error("encoding the registry failed")]
    Format,
    /// The destination refused the bytes (client gone, deadline passed, …).
    #[error("writing the exposition: {0}")]
    Io(#[from] std::io::Error),
}

/// Encode a whole registry in `format` into `out`, a bounded piece at a time: the exposition is
/// never held whole, whatever its size. The bytes are exactly those of [`encode_registry`]
/// (prometheus-client's OpenMetrics text, converted line by line for the Prometheus format).
pub fn encode_registry_to<W: std::io::Write>(
    registry: &Registry,
    format: Format,
    out: W,
) -> Result<(), EncodeError> {
    let mut sink = LineSink::new(format, out, STREAM_PIECE);
    let r = prometheus_client::encoding::text::encode(&mut sink, registry);
    if let Some(e) = sink.error.take() {
        return Err(EncodeError::Io(e));
    }
    r.map_err(|_| EncodeError::Format)?;
    sink.flush_lines(true)?;
    Ok(())
}

/// How much OpenMetrics text [`encode_registry_to`] collects before converting and writing it.
const STREAM_PIECE: usize = 32 * 1024;

/// A `fmt::Write` that takes prometheus-client's output, and passes it on in whole lines
/// (converted to the Prometheus format when asked) once `piece` bytes have gathered.
struct LineSink<W: std::io::Write> {
    pending: String,
    converter: Option<PromConverter>,
    converted: String,
    piece: usize,
    out: W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> LineSink<W> {
    fn new(format: Format, out: W, piece: usize) -> Self {
        LineSink {
            pending: String::with_capacity(piece + 1024),
            converter: (format == Format::Prometheus).then(PromConverter::default),
            converted: String::new(),
            piece,
            out,
            error: None,
        }
    }

    /// Write out every complete line gathered (every byte when `all`).
    fn flush_lines(&mut self, all: bool) -> std::io::Result<()> {
        let end = if all {
            self.pending.len()
        } else {
            match self.pending.rfind('\n') {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        };
        let text = self.pending.get(..end).unwrap_or("");
        match self.converter.as_mut() {
            None => self.out.write_all(text.as_bytes())?,
            Some(c) => {
                self.converted.clear();
                c.convert(text, &mut self.converted);
                self.out.write_all(self.converted.as_bytes())?;
            }
        }
        self.pending.drain(..end);
        Ok(())
    }
}

impl<W: std::io::Write> std::fmt::Write for LineSink<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.error.is_some() {
            return Err(std::fmt::Error);
        }
        self.pending.push_str(s);
        if self.pending.len() >= self.piece {
            if let Err(e) = self.flush_lines(false) {
                self.error = Some(e);
                return Err(std::fmt::Error);
            }
        }
        Ok(())
    }
}

/// Convert OpenMetrics text (as prometheus-client writes it) into Prometheus text format 0.0.4:
/// counter families are named with their `_total` suffix, info families become gauges named
/// `…_info`, `# UNIT`, `# EOF`, `_created` samples and exemplars are dropped.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    PromConverter::default().convert(om, &mut out);
    out
}

/// The line-by-line state of [`openmetrics_to_prometheus`], so that it can run over a text
/// given in pieces that end at line ends.
#[derive(Debug, Default)]
struct PromConverter {
    pending_help: Option<(String, String)>,
    family_type: String,
}

impl PromConverter {
    fn convert(&mut self, om: &str, out: &mut String) {
        use std::fmt::Write as _;
        for line in om.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                self.pending_help = Some((name.to_string(), help.to_string()));
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap_or((rest, "unknown"));
                self.family_type.clear();
                self.family_type.push_str(ty);
                let (suffix, out_ty) = match ty {
                    "counter" => ("_total", "counter"),
                    "info" => ("_info", "gauge"),
                    "stateset" | "gaugehistogram" => ("", "gauge"),
                    "unknown" => ("", "untyped"),
                    other => ("", other),
                };
                if let Some((hname, help)) = self.pending_help.take() {
                    if hname == name {
                        // Writing into a String cannot fail.
                        let _ =
                            writeln!(out, "# HELP {name}{suffix} {}", help.replace("\\\"", "\""));
                    }
                }
                let _ = writeln!(out, "# TYPE {name}{suffix} {out_ty}");
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let sample = strip_exemplar(line);
            if matches!(
                self.family_type.as_str(),
                "counter" | "histogram" | "summary"
            ) {
                let name_end = sample.find(['{', ' ']).unwrap_or(sample.len());
                if sample
                    .get(..name_end)
                    .is_some_and(|n| n.ends_with("_created"))
                {
                    continue;
                }
            }
            out.push_str(sample);
            out.push('\n');
        }
    }
}

/// The sample part of a line, without an OpenMetrics exemplar (` # {…} value`).
fn strip_exemplar(line: &str) -> &str {
    // Fast path: no " # " anywhere (the usual case) means no exemplar.
    if !line.contains(" # ") {
        return line;
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes => return line[..i].trim_end(),
            _ => {}
        }
    }
    line
}

#[cfg(any(test, feature = "testing"))]
pub mod oracle {
    //! The test oracles: a fixed snapshot rendered as it would be served, a source that always
    //! answers it, and a parser and checker of exposition text.
    use super::{encode_registry, Format};
    use crate::config::Config;
    use crate::families::{build, Built};
    use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
    use herald_shared::model::Snapshot;
    use herald_shared::reader::{IpvsSource, ReadError};
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::DescriptorEncoder;
    use prometheus_client::registry::Registry;
    use std::collections::{BTreeMap, HashSet};

    /// Collector emitting the families of one fixed snapshot (used by [`render_snapshot`]).
    #[derive(Debug)]
    struct FixedFamilies(Built);

    impl Collector for FixedFamilies {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            self.0.encode(&mut encoder)
        }
    }

    /// The IPVS series for one snapshot (and connection-table summary), as they would be served,
    /// without the exporter's own scrape metrics. For tests and the lab: compare with `ipvsadm`.
    pub fn render_snapshot(
        snapshot: &Snapshot,
        conn: Option<&ConnTableSummary>,
        cfg: &Config,
        format: Format,
    ) -> String {
        let built = build(snapshot.clone(), conn, cfg);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(FixedFamilies(built)));
        // Writing into a String cannot fail.
        encode_registry(&registry, format).unwrap_or_default()
    }

    /// An [`IpvsSource`] that always answers with the same snapshot and connection table (tests,
    /// the lab, `--demo` style runs). `None` for the snapshot answers `ModuleNotLoaded`.
    #[derive(Debug, Clone, Default)]
    pub struct StaticSource {
        pub snapshot: Option<Snapshot>,
        pub conn_table: ConnTableSummary,
    }

    impl IpvsSource for StaticSource {
        fn snapshot(&self) -> Result<Snapshot, ReadError> {
            self.snapshot.clone().ok_or(ReadError::ModuleNotLoaded)
        }

        fn conn_table(&self, _limits: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
            Ok(self.conn_table.clone())
        }
    }

    /// One sample line parsed from an exposition.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ParsedSample {
        pub name: String,
        /// Labels sorted by name.
        pub labels: BTreeMap<String, String>,
        pub value: String,
    }

    /// A sample line that does not parse, with the line quoted.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{problem} in {line:?}")]
    pub struct SampleError {
        /// What is wrong with it.
        pub problem: SampleProblem,
        /// The line as given (without trailing white space).
        pub line: String,
    }

    /// What is wrong with a sample line.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum SampleProblem {
        #[error("no value")]
        NoValue,
        #[error("no metric name")]
        NoName,
        #[error("unterminated label set")]
        UnterminatedLabelSet,
        #[error("label {0:?} value is not quoted")]
        Unquoted(String),
        #[error("dangling escape")]
        DanglingEscape,
        #[error("unterminated label value")]
        UnterminatedValue,
        #[error("label {0:?} repeated")]
        Repeated(String),
        #[error("expected ',' or '}}' after label {0:?}")]
        NoSeparator(String),
    }

    /// Parse one sample line (`name{a="b",…} value [timestamp]`); comments are not samples.
    pub fn parse_sample(line: &str) -> Result<ParsedSample, SampleError> {
        let line = line.trim_end();
        let err = |problem: SampleProblem| SampleError {
            problem,
            line: line.to_string(),
        };
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err(SampleProblem::NoValue))?;
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(err(SampleProblem::NoName));
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let mut consumed = None;
            loop {
                // key
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some((i, '}')) if key.is_empty() => {
                            consumed = Some(i + 1);
                            break;
                        }
                        Some((_, '=')) => break,
                        Some((_, c)) if c == ',' && key.is_empty() => continue,
                        Some((_, c)) => key.push(c),
                        None => return Err(err(SampleProblem::UnterminatedLabelSet)),
                    }
                }
                if consumed.is_some() {
                    break;
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err(SampleProblem::Unquoted(key)));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(err(SampleProblem::DanglingEscape)),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(err(SampleProblem::UnterminatedValue)),
                    }
                }
                if labels.insert(key.clone(), value).is_some() {
                    return Err(err(SampleProblem::Repeated(key)));
                }
                match chars.next() {
                    Some((_, ',')) => {
                        if let Some(&(i, '}')) = chars.peek() {
                            consumed = Some(i + 1);
                            break;
                        }
                    }
                    Some((i, '}')) => {
                        consumed = Some(i + 1);
                        break;
                    }
                    _ => return Err(err(SampleProblem::NoSeparator(key))),
                }
            }
            let c = consumed.unwrap_or(r.len());
            rest = r.get(c..).unwrap_or("");
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| err(SampleProblem::NoValue))?;
        Ok(ParsedSample {
            name: name.to_string(),
            labels,
            value: value.to_string(),
        })
    }

    /// Parse every sample line of an exposition (either format).
    pub fn parse_exposition(text: &str) -> Result<Vec<ParsedSample>, SampleError> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(parse_sample)
            .collect()
    }

    /// Check an exposition for the series rules: no two samples with the same name and labels, no
    /// empty label value, no `<nil>`/`None` placeholder values. Returns every violation found.
    pub fn check_series(text: &str) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            match parse_sample(line) {
                Err(e) => problems.push(e.to_string()),
                Ok(s) => {
                    for (k, v) in &s.labels {
                        if v.is_empty() || v == "<nil>" || v == "None" || v == "null" {
                            problems
                                .push(format!("{}: label {k} has placeholder value {v:?}", s.name));
                        }
                    }
                    let key = (s.name.clone(), s.labels.clone());
                    if !seen.insert(key) {
                        problems.push(format!("duplicate series: {line}"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Render a snapshot in both formats, with and without per-destination series, and run
    /// [`check_series`] on each: the uniqueness and label check over any snapshot, for tests and the
    /// lab. Problems are prefixed with the variant that showed them.
    pub fn check_snapshot(
        snapshot: &Snapshot,
        conn: Option<&ConnTableSummary>,
        cfg: &Config,
    ) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for per_destination in [true, false] {
            let cfg = Config {
                per_destination,
                ..cfg.clone()
            };
            for format in [Format::Prometheus, Format::OpenMetrics] {
                if let Err(p) = check_series(&render_snapshot(snapshot, conn, &cfg, format)) {
                    problems
                        .extend(p.into_iter().map(|e| {
                            format!("{format:?}, per_destination={per_destination}: {e}")
                        }));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::oracle::*;
    use super::*;
    use crate::config::Config;

    #[test]
    fn negotiation_follows_prometheus_accept_headers() {
        assert_eq!(negotiate(None), Format::Prometheus);
        assert_eq!(negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(negotiate(Some("text/plain")), Format::Prometheus);
        // Prometheus 2.x default.
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some(
                "application/openmetrics-text; version=0.0.1,text/plain;q=0.5"
            )),
            Format::Prometheus,
            "only OpenMetrics 1.0.0 is served"
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0.2,text/plain;q=0.9")),
            Format::Prometheus
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
        assert_eq!(negotiate(Some(";;,,q=x;")), Format::Prometheus);
    }

    #[test]
    fn conversion_renames_counters_and_infos() {
        let om = "# HELP a_bytes Bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total{x=\"1\"} 5\na_bytes_created 1.0\n# HELP b Info.\n# TYPE b info\nb_info{v=\"#1\"} 1\n# TYPE c gauge\nc 1.5 # {trace=\"x\"} 1\n# EOF\n";
        let p = openmetrics_to_prometheus(om);
        assert_eq!(
            p,
            "# HELP a_bytes_total Bytes.\n# TYPE a_bytes_total counter\na_bytes_total{x=\"1\"} 5\n# HELP b_info Info.\n# TYPE b_info gauge\nb_info{v=\"#1\"} 1\n# TYPE c gauge\nc 1.5\n"
        );
    }

    #[test]
    fn label_values_containing_a_hash_are_kept() {
        let om = "# TYPE g gauge\ng{name=\"a # b\",x=\"\\\" # \"} 2\ng{name=\"c\"} 3 # {t=\"1\"} 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus(om),
            "# TYPE g gauge\ng{name=\"a # b\",x=\"\\\" # \"} 2\ng{name=\"c\"} 3\n"
        );
    }

    #[test]
    fn sample_parser_handles_escapes_and_rejects_garbage() {
        let s = parse_sample(r#"m{a="x\"y",b="c\\d\ne",} 3 1000"#).unwrap();
        assert_eq!(s.name, "m");
        assert_eq!(s.labels["a"], "x\"y");
        assert_eq!(s.labels["b"], "c\\d\ne");
        assert_eq!(s.value, "3");
        assert_eq!(parse_sample("m 1").unwrap().labels.len(), 0);
        assert_eq!(parse_sample("m{} 1").unwrap().value, "1");
        for bad in [
            "",
            "m",
            "m{a=1} 1",
            "m{a=\"1\" 1",
            "m{a=\"1\",a=\"2\"} 1",
            "{a=\"1\"} 1",
            "m{a=\"1\"}",
        ] {
            assert!(parse_sample(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn streaming_in_any_piece_size_gives_the_same_bytes() {
        use crate::fixture::{rich_conn_table, rich_snapshot};
        use std::fmt::Write as _;
        let om = render_snapshot(
            &rich_snapshot(),
            Some(&rich_conn_table()),
            &Config::default(),
            Format::OpenMetrics,
        );
        let om = format!("{om}# HELP x_é Ünïcode \\\"q\\\".\n# TYPE x_é counter\nx_é_total 1\r\nx_é_created 2\nlast 1");
        let prom = openmetrics_to_prometheus(&om);
        assert!(
            prom.contains(
                "# HELP x_é_total Ünïcode \"q\".\n# TYPE x_é_total counter\nx_é_total 1\nlast 1\n"
            ),
            "{prom}"
        );
        for piece in [1, 2, 3, 7, 64, 1000, 1 << 20] {
            for (format, want) in [(Format::Prometheus, &prom), (Format::OpenMetrics, &om)] {
                let mut sink = LineSink::new(format, Vec::new(), piece);
                // Writes of 1 to 13 characters, as an encoder might make them.
                let chars: Vec<char> = om.chars().collect();
                let mut i = 0;
                let mut n = 1;
                while i < chars.len() {
                    let end = (i + n).min(chars.len());
                    let s: String = chars[i..end].iter().collect();
                    sink.write_str(&s).unwrap();
                    i = end;
                    n = n % 13 + 1;
                }
                sink.flush_lines(true).unwrap();
                assert!(sink.pending.is_empty());
                let got = String::from_utf8(sink.out).unwrap();
                assert!(got == *want, "piece {piece}, {format:?}");
            }
        }
    }

    #[test]
    fn a_refusing_destination_stops_the_encoding_with_its_error() {
        struct Refuse;
        impl std::io::Write for Refuse {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut registry = Registry::default();
        let big = crate::fixture::rich_snapshot();
        crate::register(
            &mut registry,
            std::sync::Arc::new(StaticSource {
                snapshot: Some(big),
                conn_table: crate::fixture::rich_conn_table(),
            }),
            &Config::default(),
        );
        let e = encode_registry_to(&registry, Format::Prometheus, Refuse).unwrap_err();
        assert!(
            matches!(e, EncodeError::Io(ref io) if io.to_string() == "gone"),
            "{e:?}"
        );
    }

    #[test]
    fn check_snapshot_passes_the_fixture() {
        use crate::fixture::{rich_conn_table, rich_snapshot};
        check_snapshot(
            &rich_snapshot(),
            Some(&rich_conn_table()),
            &Config::default(),
        )
        .unwrap();
    }

    #[test]
    fn checker_finds_duplicates_and_empty_values() {
        assert!(check_series("a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\n").is_ok());
        let e = check_series("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n").unwrap_err();
        assert!(e[0].contains("duplicate"), "{e:?}");
        let e = check_series("a{x=\"\"} 1\nb{y=\"<nil>\"} 1\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }
}

#[cfg(test)]
mod robustness {
    //! Arbitrary input through every parser: errors are fine, panics are not.
    use super::oracle::*;
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_input() {
        let alphabet: Vec<char> = "ab_{}=\",# \\\n;q.0123456789/:[]*-éx\u{0}\u{ff}"
            .chars()
            .collect();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_sample(&s);
            let _ = check_series(&s);
            let _ = negotiate(Some(&s));
            let _ = openmetrics_to_prometheus(&s);
            let _ = openmetrics_to_prometheus(&format!("# TYPE a counter\n{s}\n"));
            let _ = s.parse::<crate::config::ServiceSpec>();
            let _ = toml::from_str::<crate::config::Config>(&s);
        }
    }
}
