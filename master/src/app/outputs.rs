//! The files a run writes: the JSON summary, and the reports made from it (HTML, Locust CSV,
//! HdrHistogram logs, the thresholds as JUnit XML). Every path is checked before the first request (its folder created, or
//! the run refused with exit 2), so a long run is never lost to a typo; at the end the summary
//! is written first, so it is never the casualty of another output's failure, and every failure
//! is said.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::exit::Failure;
use crate::outcome::{Summary, with_suffix};
use crate::report::{self, JunitReporter, Reporter};

/// The outputs of one run, checked.
pub struct Outputs {
    pub summary: PathBuf,
    reporters: Vec<Box<dyn Reporter>>,
}

impl Outputs {
    /// Checks that each path can be written: its folder exists or is created, and a file can
    /// be made there (the summary's folder also takes `e`'s partial summary).
    pub fn prepare(
        summary: PathBuf,
        html: Option<&Path>,
        csv: Option<&Path>,
        state_dir: Option<&Path>,
    ) -> Result<Outputs, Failure> {
        check_writable(&summary, "the summary")?;
        if let Some(dir) = state_dir {
            check_writable(&dir.join("RUN_ID.journal"), "the journal")?;
        }
        if let Some(path) = html {
            check_writable(path, "the HTML report")?;
        }
        if let Some(prefix) = csv {
            check_writable(&with_suffix(prefix, "_stats.csv"), "the CSV files")?;
        }
        Ok(Outputs {
            summary,
            reporters: report::reporters(html, csv),
        })
    }

    /// Also writes the thresholds as JUnit XML to `path`, checked now like the others.
    pub fn with_junit(mut self, path: Option<&Path>) -> Result<Outputs, Failure> {
        if let Some(path) = path {
            check_writable(path, "the JUnit XML")?;
            self.reporters.push(Box::new(JunitReporter {
                path: path.to_owned(),
            }));
        }
        Ok(self)
    }

    /// Writes the summary, then every report; returns what failed (each also said).
    pub fn write(&self, summary: &Summary) -> Result<(), Failure> {
        summary.write(&self.summary).map_err(|e| {
            Failure::not_carried_out(anyhow!(
                "cannot write the summary to {}: {e}",
                self.summary.display()
            ))
        })?;
        let failed = write_reports(&self.reporters, summary);
        match failed.len() {
            0 => Ok(()),
            n => Err(Failure::not_carried_out(anyhow!(
                "{n} of the reports could not be written (the summary was): {}",
                failed.join("; ")
            ))),
        }
    }
}

/// Runs every reporter; returns the failures (each also said on standard error).
pub fn write_reports(reporters: &[Box<dyn Reporter>], summary: &Summary) -> Vec<String> {
    let mut failed = Vec::new();
    for r in reporters {
        match r.write(summary) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                let why = format!("{}: {e}", r.describe());
                eprintln!("error: {why}");
                failed.push(why);
            }
        }
    }
    failed
}

/// Whether a file can be written at `path`: its folder is created if missing, and a probe file
/// is made there and removed (a read-only folder, a path through a file, a folder in the way
/// are all found now, not after the run).
fn check_writable(path: &Path, what: &str) -> Result<(), Failure> {
    let refuse = |why: String| {
        Failure::bad_input(anyhow!("cannot write {what} to {}: {why}", path.display()))
    };
    if path.is_dir() {
        return Err(refuse("it is a folder".into()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| refuse(format!("cannot create the folder {}: {e}", dir.display())))?;
    let probe = dir.join(format!(".stampede-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map_err(|e| refuse(format!("cannot create a file in {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stampede-outputs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_folders_are_created_and_impossible_paths_refused() {
        let dir = temp_dir("paths");
        let nested = dir.join("new/deeper/x.json");
        let report = dir.join("reports/r.html");
        let csv = dir.join("csv/run");
        Outputs::prepare(nested.clone(), Some(&report), Some(&csv), None).unwrap();
        assert!(nested.parent().unwrap().is_dir());
        assert!(report.parent().unwrap().is_dir());
        assert!(csv.parent().unwrap().is_dir());
        // No probe is left behind.
        assert_eq!(
            std::fs::read_dir(nested.parent().unwrap()).unwrap().count(),
            0
        );

        let file = dir.join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let e = Outputs::prepare(file.join("x.json"), None, None, None)
            .err()
            .unwrap();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("cannot write the summary"), "{e}");
        let e = Outputs::prepare(dir.clone(), None, None, None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("it is a folder"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_output_that_fails_at_the_end_stops_none_of_the_others() {
        let dir = temp_dir("one-fails");
        let (summary, html, junit) = (dir.join("s.json"), dir.join("r.html"), dir.join("j.xml"));
        let outputs = Outputs::prepare(summary.clone(), Some(&html), None, None)
            .unwrap()
            .with_junit(Some(&junit))
            .unwrap();
        // Checked and fine before the run; by its end a folder has taken the report's place.
        std::fs::create_dir_all(html.join("in-the-way")).unwrap();
        let e = outputs.write(&Summary::default()).err().unwrap();
        assert!(e.to_string().contains("HTML report"), "{e}");
        assert!(summary.is_file(), "the summary is written first");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("<testsuites"), "{xml}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
