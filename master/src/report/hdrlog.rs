//! HdrHistogram interval logs, one per arch (`PREFIX_ARCH.hlog`), for HdrHistogram's own
//! tooling (HistogramLogProcessor, the Python `hdrh` reader, HdrHistogram plotters). Values are
//! microseconds; the max column is in milliseconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

use super::{ReportError, histogram, with_suffix, write_atomically};
use crate::outcome::Summary;

/// Writes one log per arch; returns their paths.
pub fn write_all(summary: &Summary, prefix: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut out = Vec::new();
    for arch in summary.by_arch.keys() {
        let path = with_suffix(prefix, &format!("_{}.hlog", file_safe(arch)));
        let bytes = log_of(summary, arch).map_err(|e| match e {
            LogError::Report(e) => e,
            LogError::Io(source) => ReportError::Io {
                path: path.clone(),
                source,
            },
        })?;
        write_atomically(&path, &bytes)?;
        out.push(path);
    }
    Ok(out)
}

enum LogError {
    Report(ReportError),
    Io(std::io::Error),
}

/// The interval log of one arch, as bytes.
fn log_of(summary: &Summary, arch: &str) -> Result<Vec<u8>, LogError> {
    let start = humantime::parse_rfc3339(&summary.started_at).unwrap_or(SystemTime::UNIX_EPOCH);
    let interval = Duration::from_secs_f64(summary.interval_s.max(0.0));
    let mut bytes = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "stampede run {} ({}), arch {arch}: request latency in microseconds",
            summary.run_id, summary.name
        ))
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut bytes, &mut serializer)
        .map_err(LogError::Io)?;
    writer
        .write_comment("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")
        .map_err(LogError::Io)?;
    for point in &summary.series {
        let Some(p) = point.by_arch.get(arch) else {
            continue;
        };
        let what = format!("{arch} at {} s", point.t);
        let Some(h) = histogram(p.hdr.as_deref(), &what).map_err(LogError::Report)? else {
            continue;
        };
        let end = Duration::from_secs_f64(point.t.max(0.0));
        writer
            .write_histogram(&h, end.saturating_sub(interval), interval, None)
            .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
    }
    Ok(bytes)
}

/// An arch label as part of a file name: it comes from response headers.
fn file_safe(arch: &str) -> String {
    arch.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_labels_cannot_escape_the_directory() {
        assert_eq!(file_safe("arm64"), "arm64");
        assert_eq!(file_safe("../x/y"), ".._x_y");
    }
}
