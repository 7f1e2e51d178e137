//! Label sets shared by the per-peer metric families of the BGP speaker and of BFD, so that a
//! peer's series carry the same label names in both and a dashboard can join them.

use prometheus_client::encoding::EncodeLabelSet;

/// One peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PeerLabels {
    pub(crate) peer: String,
}

/// One peer in one state (a gauge that is 1 for the current state).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub(crate) peer: String,
    pub(crate) state: &'static str,
}

/// One peer's state transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TransitionLabels {
    pub(crate) peer: String,
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
}
