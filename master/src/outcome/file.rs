//! Writing an output file so that a reader (or a crash) never sees half of it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `path` + `suffix` (`out/run` + `_stats.csv` → `out/run_stats.csv`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, creating the
/// folder if it is missing.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = with_suffix(path, ".tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.flush()?;
    }
    std::fs::rename(&tmp, path)
}
