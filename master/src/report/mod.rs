//! Reporters of one summary model: the HTML report, Locust-format CSV and HdrHistogram
//! interval logs (and the thresholds as JUnit XML) are all written from a [`Summary`], during a run or later from its JSON
//! (`stampede-master report`), so they always agree with it; the verdict in words is read from
//! it too, and the comparison of two summaries (`compare`) is put in words here.
//!
//! May import: `outcome` only (and `scenario`, which it echoes).

pub mod charts;
pub mod csv;
pub mod diff;
pub mod hdrlog;
pub mod html;
pub mod junit;
pub mod verdict;

use std::path::{Path, PathBuf};

use crate::outcome::hdr::Hdr64Error;
use crate::outcome::{self, Summary};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the summary's histogram of {what} is unreadable: {source}")]
    Histogram { what: String, source: Hdr64Error },
    #[error("cannot draw the {chart} chart: {message}")]
    Chart { chart: String, message: String },
    #[error("cannot read the summary {path}: {message}")]
    Summary { path: PathBuf, message: String },
}

/// Something that turns a summary into files.
pub trait Reporter {
    /// What it writes, for messages.
    fn describe(&self) -> String;
    /// Writes its files; returns their paths.
    fn write(&self, summary: &Summary) -> Result<Vec<PathBuf>, ReportError>;
}

/// The self-contained HTML report.
pub struct HtmlReporter {
    pub path: PathBuf,
}

impl Reporter for HtmlReporter {
    fn describe(&self) -> String {
        format!("HTML report {}", self.path.display())
    }

    fn write(&self, summary: &Summary) -> Result<Vec<PathBuf>, ReportError> {
        let page = html::render(summary)?;
        write_atomically(&self.path, page.as_bytes())?;
        Ok(vec![self.path.clone()])
    }
}

/// Locust's `PREFIX_stats.csv`, `PREFIX_stats_history.csv`, `PREFIX_failures.csv`.
pub struct CsvReporter {
    pub prefix: PathBuf,
}

impl Reporter for CsvReporter {
    fn describe(&self) -> String {
        format!("Locust CSV {}_*.csv", self.prefix.display())
    }

    fn write(&self, summary: &Summary) -> Result<Vec<PathBuf>, ReportError> {
        csv::write_all(summary, &self.prefix)
    }
}

/// One HdrHistogram interval log per arch: `PREFIX_ARCH.hlog`.
pub struct IntervalLogReporter {
    pub prefix: PathBuf,
}

impl Reporter for IntervalLogReporter {
    fn describe(&self) -> String {
        format!(
            "HdrHistogram interval logs {}_ARCH.hlog",
            self.prefix.display()
        )
    }

    fn write(&self, summary: &Summary) -> Result<Vec<PathBuf>, ReportError> {
        hdrlog::write_all(summary, &self.prefix)
    }
}

/// The thresholds as JUnit XML, for CI.
pub struct JunitReporter {
    pub path: PathBuf,
}

impl Reporter for JunitReporter {
    fn describe(&self) -> String {
        format!("JUnit XML {}", self.path.display())
    }

    fn write(&self, summary: &Summary) -> Result<Vec<PathBuf>, ReportError> {
        let doc = junit::thresholds_document(summary).map_err(|source| ReportError::Io {
            path: self.path.clone(),
            source,
        })?;
        write_atomically(&self.path, &doc)?;
        Ok(vec![self.path.clone()])
    }
}

/// The reporters asked for: an HTML report at `html`, CSV and interval logs at `csv`.
pub fn reporters(html: Option<&Path>, csv: Option<&Path>) -> Vec<Box<dyn Reporter>> {
    let mut out: Vec<Box<dyn Reporter>> = Vec::new();
    if let Some(path) = html {
        out.push(Box::new(HtmlReporter {
            path: path.to_owned(),
        }));
    }
    if let Some(prefix) = csv {
        out.push(Box::new(CsvReporter {
            prefix: prefix.to_owned(),
        }));
        out.push(Box::new(IntervalLogReporter {
            prefix: prefix.to_owned(),
        }));
    }
    out
}

/// Reads a summary JSON file.
pub fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    Summary::read(path).map_err(|message| ReportError::Summary {
        path: path.to_owned(),
        message,
    })
}

/// `PREFIX` + `suffix`, next to the prefix (`out/run` + `_stats.csv` → `out/run_stats.csv`).
pub use outcome::with_suffix;

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    outcome::write_atomically(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A histogram of the summary, decoded; `what` names it in errors.
pub(crate) fn histogram(
    text: Option<&str>,
    what: &str,
) -> Result<Option<hdrhistogram::Histogram<u64>>, ReportError> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            outcome::hdr::decode(t).map_err(|source| ReportError::Histogram {
                what: what.to_owned(),
                source,
            })
        })
        .transpose()
}
