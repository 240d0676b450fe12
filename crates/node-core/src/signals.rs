//! How a node process stops: SIGINT or SIGTERM end it, SIGHUP is logged and ignored (the
//! configuration is read once, at start).

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM: how `run` and `testbed` learn to stop.
///
/// SIGHUP (a closed terminal, a `systemctl reload`) does not stop the node: it is logged and
/// ignored, as the configuration is read once at start. Call [`ignore_hangup`] first thing, so
/// a SIGHUP that arrives while the node is still starting is not fatal either.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    /// The next delivery of `signal`, or never when it could not be registered.
    async fn next(signal: &mut Option<Signal>) -> Option<()> {
        match signal {
            Some(signal) => signal.recv().await,
            None => std::future::pending().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return,
            Some(()) = next(&mut term) => return,
            Some(()) = next(&mut hangup) => tracing::info!(
                "SIGHUP ignored: the configuration is read once at start; restart the node to \
                 apply a change"
            ),
        }
    }
}

/// Takes SIGHUP's default action (terminate) away for the rest of the process; from then on
/// [`wait_for_signal`] logs it. Needs a tokio runtime.
pub fn ignore_hangup() {
    // Registering a handler replaces the disposition for the life of the process, whether or
    // not the returned stream is kept.
    let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
}
