//! How a command ends, as SPEC.md's exit codes: 0 the run completed and its thresholds passed,
//! 1 a threshold failed, 2 bad scenario, flags or input, 3 the run could not be carried out;
//! and 130 for a second interrupt. Every command returns a [`Failure`] instead of printing and
//! picking a code itself; `main` prints it once.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code after a second interrupt (or a second `q`), as shells report SIGINT.
pub const INTERRUPTED: i32 = 130;

/// Why a command did not exit 0.
#[derive(Debug)]
pub enum Failure {
    /// The run completed, its summary is written, and these thresholds failed.
    Thresholds {
        summary: PathBuf,
        failed: Vec<String>,
    },
    /// `compare`: these `--fail-on` rules found a significant regression.
    Regressions(Vec<String>),
    /// A bad scenario, flag or input file: nothing was run.
    BadInput(anyhow::Error),
    /// The run could not be carried out (no workers came, an output could not be written, ...).
    NotCarriedOut(anyhow::Error),
}

impl Failure {
    pub fn bad_input(e: impl Into<anyhow::Error>) -> Failure {
        Failure::BadInput(e.into())
    }

    pub fn not_carried_out(e: impl Into<anyhow::Error>) -> Failure {
        Failure::NotCarriedOut(e.into())
    }

    pub fn code(&self) -> u8 {
        match self {
            Failure::Thresholds { .. } | Failure::Regressions(_) => 1,
            Failure::BadInput(_) => 2,
            Failure::NotCarriedOut(_) => 3,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Thresholds { summary, failed } => write!(
                f,
                "summary written to {}; thresholds failed: {}",
                summary.display(),
                failed.join("; ")
            ),
            Failure::Regressions(fired) => {
                write!(f, "significant regression: {}", fired.join("; "))
            }
            Failure::BadInput(e) | Failure::NotCarriedOut(e) => write!(f, "error: {e:#}"),
        }
    }
}

/// The exit code of a command's result, its failure said on standard error.
pub fn exit_code(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_the_specs_codes_and_say_what_went_wrong() {
        let t = Failure::Thresholds {
            summary: "s.json".into(),
            failed: vec!["p99 < 5".into(), "rps > 9".into()],
        };
        assert_eq!(t.code(), 1);
        assert_eq!(
            t.to_string(),
            "summary written to s.json; thresholds failed: p99 < 5; rps > 9"
        );
        let bad = Failure::bad_input(anyhow::anyhow!("s.toml: `load.users`: must be at least 1"));
        assert_eq!(bad.code(), 2);
        assert_eq!(
            bad.to_string(),
            "error: s.toml: `load.users`: must be at least 1"
        );
        assert_eq!(
            Failure::not_carried_out(anyhow::anyhow!("no workers")).code(),
            3
        );
    }
}
