//! The run's side of the journal: what the controller tells it (a worker started or left, a
//! report was counted) and when it writes. Counted reports wait in a batch, and their
//! acknowledgements with them, until the batch is written: a report is acknowledged only once
//! it is in the journal, so after a crash it is either there or still held by its worker.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::fleet::{Lost, Started};
use super::pacing::PacingState;
use crate::journal::record::{self, Entry};
use crate::journal::{Batch, Writer};
use crate::stats::Report;

/// How often a batch of counted reports is written (and acknowledged): short beside a report
/// interval, long enough to gather many reports per write.
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// An acknowledgement waiting for its report to be written: (worker, connection, seq).
pub type Ack = (String, u64, u64);

pub struct Journaling {
    writer: Writer,
    batch: Batch,
    acks: Vec<Ack>,
    /// When the plan's position was last written.
    progress_at: Instant,
    progress_every: Duration,
    /// The journal could not be written: the run goes on, said, without it.
    failed: bool,
    /// Lines worth telling the user, taken by the controller.
    pub notices: Vec<String>,
}

impl Journaling {
    /// A new journal for run `run_id` at `path`, its start written and synced.
    pub fn create(
        path: &Path,
        start: record::Start,
        interval: Duration,
    ) -> std::io::Result<Journaling> {
        let mut writer = Writer::create(path, interval)?;
        writer.append(Entry::Start(start));
        writer.flush(true)?;
        Ok(Journaling::on(writer, interval))
    }

    /// Goes on with a resumed journal.
    pub fn resume(writer: Writer, interval: Duration) -> Journaling {
        Journaling::on(writer, interval)
    }

    fn on(writer: Writer, interval: Duration) -> Journaling {
        Journaling {
            writer,
            batch: Batch::default(),
            acks: Vec::new(),
            progress_at: Instant::now(),
            progress_every: interval,
            failed: false,
            notices: Vec::new(),
        }
    }

    pub fn started(&mut self, s: &Started, at_ms: u64, started_ms: u64) {
        self.writer.append(Entry::Joined(record::Joined {
            worker: s.id.clone(),
            instance: s.instance.clone(),
            hostname: s.hostname.clone(),
            arch: s.arch.clone(),
            at_ms,
            started_ms: Some(started_ms),
        }));
    }

    pub fn left(&mut self, lost: &Lost, at_ms: u64) {
        self.writer.append(Entry::Left(record::Left {
            worker: lost.id.clone(),
            instance: lost.instance.clone(),
            at_ms,
            reason: lost.reason.clone(),
        }));
    }

    /// A report the aggregator counted; its acknowledgement waits for the write. Returns the
    /// acknowledgement at once when the journal is out of use.
    pub fn counted(
        &mut self,
        source: &str,
        report: &Report,
        bucket: Option<u64>,
        ack: Ack,
    ) -> Option<Ack> {
        if self.failed {
            return Some(ack);
        }
        self.batch.add(source, report, bucket);
        self.acks.push(ack);
        None
    }

    /// An acknowledgement that must not overtake the batch being gathered (a resend of a
    /// report that may be in it).
    pub fn defer(&mut self, ack: Ack) -> Option<Ack> {
        if self.failed {
            return Some(ack);
        }
        self.acks.push(ack);
        None
    }

    /// Whether a write is due (a batch waits, or the plan's position is an interval old).
    pub fn due(&self, since_write: Duration) -> bool {
        since_write >= WRITE_EVERY
            && (!self.batch.is_empty() || self.progress_at.elapsed() >= self.progress_every)
    }

    /// Writes the batch and the plan's position `at_ms` into the run; returns the
    /// acknowledgements that may go out now.
    pub fn write(
        &mut self,
        at_ms: u64,
        pacing: &PacingState,
        outages: &[(Duration, Duration)],
        sync: bool,
    ) -> Vec<Ack> {
        if self.failed {
            return std::mem::take(&mut self.acks);
        }
        if !self.batch.is_empty() {
            self.writer.append(Entry::Batch(self.batch.take(at_ms)));
        }
        self.writer
            .append(Entry::Progress(progress(at_ms, pacing, outages)));
        self.progress_at = Instant::now();
        if let Err(e) = self.writer.flush(sync) {
            let why = format!(
                "cannot write the journal {}: {e}; the run goes on without it (a crash now loses it)",
                self.writer.path().display()
            );
            tracing::error!("{why}");
            self.notices.push(why);
            self.failed = true;
        }
        std::mem::take(&mut self.acks)
    }

    /// The run is over: the journal says so, synced.
    pub fn end(
        &mut self,
        at_ms: u64,
        load_ms: u64,
        pacing: &PacingState,
        outages: &[(Duration, Duration)],
    ) {
        let _ = self.write(at_ms, pacing, outages, false);
        self.writer
            .append(Entry::End(record::End { at_ms, load_ms }));
        if let Err(e) = self.writer.flush(true) {
            tracing::error!(
                "cannot end the journal {}: {e}",
                self.writer.path().display()
            );
        }
    }
}

fn progress(
    at_ms: u64,
    pacing: &PacingState,
    outages: &[(Duration, Duration)],
) -> record::Progress {
    record::Progress {
        at_ms,
        pacing_json: serde_json::to_string(pacing).unwrap_or_default(),
        outages: outages
            .iter()
            .map(|(from, to)| record::Outage {
                from_ms: millis(*from),
                to_ms: millis(*to),
            })
            .collect(),
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, millis)
}

/// What a resumed controller takes up when it starts.
pub struct Resume {
    /// The run's start, wall clock.
    pub started_at: SystemTime,
    /// Run time of the journal's last record.
    pub last: Duration,
    pub pacing: Option<PacingState>,
    pub outages: Vec<(Duration, Duration)>,
    pub writer: Writer,
}
