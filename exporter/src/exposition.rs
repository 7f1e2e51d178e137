//! Exposition formats: content negotiation between OpenMetrics 1.0.0 and the Prometheus text
//! format 0.0.4, conversion of prometheus-client's OpenMetrics output into the latter, rendering
//! a fixed snapshot (for tests and the lab), and a series checker usable over any exposition.

use crate::config::Config;
use crate::metrics::{build, Family};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::Snapshot;
use herald_shared::reader::{IpvsSource, ReadError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashSet};

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
    let mut om = String::with_capacity(64 * 1024);
    prometheus_client::encoding::text::encode(&mut om, registry)?;
    Ok(match format {
        Format::OpenMetrics => om,
        Format::Prometheus => openmetrics_to_prometheus(&om),
    })
}

/// Convert OpenMetrics text (as prometheus-client writes it) into Prometheus text format 0.0.4:
/// counter families are named with their `_total` suffix, info families become gauges named
/// `…_info`, `# UNIT`, `# EOF`, `_created` samples and exemplars are dropped.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut pending_help: Option<(String, String)> = None;
    let mut family_type = String::new();
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name.to_string(), help.to_string()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            family_type = ty.to_string();
            let (out_name, out_ty) = match ty {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" | "gaugehistogram" => (name.to_string(), "gauge"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((hname, help)) = pending_help.take() {
                if hname == name {
                    out.push_str(&format!(
                        "# HELP {out_name} {}\n",
                        help.replace("\\\"", "\"")
                    ));
                }
            }
            out.push_str(&format!("# TYPE {out_name} {out_ty}\n"));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let sample = strip_exemplar(line);
        if matches!(family_type.as_str(), "counter" | "histogram" | "summary") {
            let name_end = sample.find(['{', ' ']).unwrap_or(sample.len());
            if sample[..name_end].ends_with("_created") {
                continue;
            }
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
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

/// Collector emitting fixed families (used by [`render_snapshot`]).
#[derive(Debug)]
struct FixedFamilies(Vec<Family>);

impl Collector for FixedFamilies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            f.encode(&mut encoder)?;
        }
        Ok(())
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
    let built = build(snapshot, conn, cfg);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(FixedFamilies(built.families)));
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

/// Parse one sample line (`name{a="b",…} value [timestamp]`); comments are not samples.
pub fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let line = line.trim_end();
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in sample line {line:?}"))?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err(format!("sample line without a metric name: {line:?}"));
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
                    None => return Err(format!("unterminated label set in {line:?}")),
                }
            }
            if consumed.is_some() {
                break;
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {key:?} value is not quoted in {line:?}"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("dangling escape in {line:?}")),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated label value in {line:?}")),
                }
            }
            if labels.insert(key.clone(), value).is_some() {
                return Err(format!("label {key:?} repeated in {line:?}"));
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
                _ => {
                    return Err(format!(
                        "expected ',' or '}}' after label {key:?} in {line:?}"
                    ))
                }
            }
        }
        let c = consumed.unwrap_or(r.len());
        rest = r.get(c..).unwrap_or("");
    }
    let value = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("no value in sample line {line:?}"))?;
    Ok(ParsedSample {
        name: name.to_string(),
        labels,
        value: value.to_string(),
    })
}

/// Parse every sample line of an exposition (either format).
pub fn parse_exposition(text: &str) -> Result<Vec<ParsedSample>, String> {
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
            Err(e) => problems.push(e),
            Ok(s) => {
                for (k, v) in &s.labels {
                    if v.is_empty() || v == "<nil>" || v == "None" || v == "null" {
                        problems.push(format!("{}: label {k} has placeholder value {v:?}", s.name));
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
                problems.extend(
                    p.into_iter()
                        .map(|e| format!("{format:?}, per_destination={per_destination}: {e}")),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
