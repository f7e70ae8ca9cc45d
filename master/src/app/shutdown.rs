//! Stopping: the first Ctrl-C, SIGTERM or `q` asks for a graceful stop (in-flight requests
//! finish, the summary is written); a second one, or a signal once the stop is under way, exits
//! at once with [`INTERRUPTED`], the terminal given back first.

use tokio_util::sync::CancellationToken;

use super::exit::INTERRUPTED;
use crate::view::tui::terminal;

/// Watches the signals: cancels `stop` on the first, and exits on the next one or when `quit`
/// is cancelled (the live view's second `q`).
pub fn install(stop: CancellationToken, quit: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = wait_signal() => {}
                () = quit.cancelled() => exit_now(),
            }
            if stop.is_cancelled() {
                exit_now();
            }
            tracing::warn!(
                "stopping: in-flight requests finish, then the summary is written (again to quit now)"
            );
            stop.cancel();
        }
    });
}

fn exit_now() -> ! {
    terminal::restore();
    eprintln!("stampede: quit before the run finished; no summary written");
    std::process::exit(INTERRUPTED);
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
