//! The metric family: its descriptor (name, help, unit, kind) and samples, and how a family is
//! written through a prometheus-client encoder, either from samples held in memory
//! ([`Family::encode`]) or from samples made while encoding ([`encode_lazy`]).

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Labels of one sample, in output order.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// Labels shared by the samples of one service or destination across families (cloning is a
/// reference-count increment, not a copy of every label string).
pub(crate) type SharedLabels = std::sync::Arc<[(&'static str, String)]>;

/// Value of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// The kind of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Name given without `_total` (the encoder appends it).
    Counter,
    Gauge,
    /// Name given without `_info` (the encoder appends it); value is always 1.
    Info,
}

/// One metric family with its samples.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// Name without the unit suffix (the encoder appends `_<unit>`), `_total` or `_info`.
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub kind: Kind,
    pub samples: Vec<(SharedLabels, Value)>,
}

impl Family {
    pub(crate) fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Family {
            name,
            help,
            unit: None,
            kind,
            samples: Vec::new(),
        }
    }

    pub(crate) fn with_unit(mut self, unit: Unit) -> Self {
        self.unit = Some(unit);
        self
    }

    pub(crate) fn push(&mut self, labels: impl Into<SharedLabels>, value: Value) {
        self.samples.push((labels.into(), value));
    }

    /// Write this family through a prometheus-client encoder (skipped when it has no samples).
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let metric_type = match self.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Info => MetricType::Info,
        };
        let mut me =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), metric_type)?;
        for (labels, value) in &self.samples {
            let labels: &[(&'static str, String)] = labels;
            if self.kind == Kind::Info {
                me.encode_info(&labels)?;
            } else if labels.is_empty() {
                // Without encode_family: an empty label set would be written as `{}`.
                encode_value(&mut me, self.kind, *value)?;
            } else {
                let mut fe = me.encode_family(&labels)?;
                encode_value(&mut fe, self.kind, *value)?;
            }
        }
        Ok(())
    }
}

fn encode_value(
    me: &mut prometheus_client::encoding::MetricEncoder,
    kind: Kind,
    value: Value,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (Kind::Counter, Value::U64(v)) => me.encode_counter::<NoLabelSet, u64, u64>(&v, None),
        (Kind::Counter, Value::I64(v)) => {
            me.encode_counter::<NoLabelSet, u64, u64>(&u64::try_from(v).unwrap_or(0), None)
        }
        (Kind::Counter, Value::F64(v)) => me.encode_counter::<NoLabelSet, f64, u64>(&v, None),
        (_, Value::U64(v)) => me.encode_gauge(&v),
        (_, Value::I64(v)) => me.encode_gauge(&v),
        (_, Value::F64(v)) => me.encode_gauge(&v),
    }
}

/// Write one family from samples made on the fly; nothing (not even the descriptor) when there
/// are none, like [`Family::encode`].
pub(crate) fn encode_lazy<L: EncodeLabelSet>(
    desc: &Family,
    encoder: &mut DescriptorEncoder,
    samples: impl Iterator<Item = (L, Value)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let metric_type = match desc.kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Info => MetricType::Info,
    };
    let mut me =
        encoder.encode_descriptor(desc.name, desc.help, desc.unit.as_ref(), metric_type)?;
    for (labels, value) in samples {
        if desc.kind == Kind::Info {
            me.encode_info(&labels)?;
        } else {
            let mut fe = me.encode_family(&labels)?;
            encode_value(&mut fe, desc.kind, value)?;
        }
    }
    Ok(())
}
