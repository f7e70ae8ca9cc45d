//! Appending to the journal: records gather in memory and go to the file in one write when the
//! run flushes (before it acknowledges what they hold), and to the disk (`fsync`) at most once
//! per report interval. A process that is killed loses nothing written; a machine that dies may
//! lose what was written since the last sync, at most one interval.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::Message;

use super::frame::{MAGIC, frame};
use super::record::{Entry, Record};

pub struct Writer {
    file: File,
    path: PathBuf,
    pending: Vec<u8>,
    sync_every: Duration,
    synced: Instant,
    dirty: bool,
}

impl Writer {
    /// A new journal at `path` (refused if one is there: a run id is never reused).
    pub fn create(path: &Path, sync_every: Duration) -> std::io::Result<Writer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(MAGIC)?;
        file.sync_all()?;
        Ok(Writer::on(file, path, sync_every))
    }

    /// The journal at `path`, cut to its first `good` bytes (a torn tail is dropped), to go on
    /// appending to.
    pub fn resume(path: &Path, good: u64, sync_every: Duration) -> std::io::Result<Writer> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(good)?;
        file.sync_all()?;
        let mut w = Writer::on(file, path, sync_every);
        // Appends go to the end.
        use std::io::{Seek, SeekFrom};
        w.file.seek(SeekFrom::End(0))?;
        Ok(w)
    }

    fn on(file: File, path: &Path, sync_every: Duration) -> Writer {
        Writer {
            file,
            path: path.to_owned(),
            pending: Vec::with_capacity(64 * 1024),
            sync_every,
            synced: Instant::now(),
            dirty: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, entry: Entry) {
        let bytes = Record { entry: Some(entry) }.encode_to_vec();
        frame(&bytes, &mut self.pending);
    }

    /// Writes what was appended (one write), and syncs it to disk when the last sync is one
    /// interval old (or `sync` asks).
    pub fn flush(&mut self, sync: bool) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
            self.dirty = true;
        }
        if self.dirty && (sync || self.synced.elapsed() >= self.sync_every) {
            self.file.sync_data()?;
            self.synced = Instant::now();
            self.dirty = false;
        }
        Ok(())
    }
}
