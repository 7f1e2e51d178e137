//! The errors of starting and reconfiguring the speaker.

/// Errors of [`super::Speaker::start`] and [`super::SpeakerHandle::reconfigure`].
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    /// The configuration is inconsistent (the message names the key).
    #[error("BGP configuration: {0}")]
    Config(String),
    /// Not called from inside a tokio runtime.
    #[error("the BGP speaker must be started inside a tokio runtime")]
    NoRuntime,
    /// The speaker is shutting down: no reconfiguration.
    #[error("the BGP speaker is shutting down")]
    ShuttingDown,
    /// The passive listener could not be set up.
    #[error("BGP listener on {addr}: {source}")]
    Listen {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}
