//! Logs: `tracing` to standard error (held back while the terminal UI owns the screen), at the
//! level `RUST_LOG` asks for (INFO by default), coloured only on a terminal and only when
//! `NO_COLOR` is unset, so a log written to a file or a pipe carries no escape codes.

use std::io::IsTerminal;

use crate::view::tui::terminal::LogWriter;

/// Whether log lines get ANSI colours: standard error is a terminal and `NO_COLOR` is not set
/// (to anything but the empty string, as no-color.org asks).
pub fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(LogWriter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".into())));
        assert!(colour(true, Some("".into())));
    }
}
