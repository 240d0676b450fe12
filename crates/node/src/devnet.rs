//! `preconf-node devnet`: a local multi-node network in one process.

use metrics_exporter_prometheus::PrometheusHandle;

use crate::error::NodeError;

/// Flags of `preconf-node devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Log at info level (default: warnings only).
    #[arg(long)]
    pub verbose: bool,
}

/// Runs the devnet.
pub async fn run(args: DevnetArgs, prometheus: Option<PrometheusHandle>) -> Result<(), NodeError> {
    let _ = (args, prometheus);
    Err(NodeError::Devnet("not yet implemented".into()))
}
