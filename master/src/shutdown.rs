//! Ctrl-C and SIGTERM: the first asks for a graceful stop (the summary is still written), the
//! second exits at once.

use tokio_util::sync::CancellationToken;

/// Exit code after a second interrupt, as shells report SIGINT.
const INTERRUPTED: i32 = 130;

/// Cancels `stop` on the first signal; exits the process on the second.
pub fn install(stop: CancellationToken) {
    tokio::spawn(async move {
        wait_signal().await;
        tracing::warn!(
            "stopping: in-flight requests finish, then the summary is written (again to quit now)"
        );
        stop.cancel();
        wait_signal().await;
        crate::tui::terminal::restore();
        std::process::exit(INTERRUPTED);
    });
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
