//! What comes in from the workers: each event handled, each report counted exactly once
//! and acknowledged once the journal has it (the journal opened and written here), and the wait
//! for the final reports at the end.

use std::time::Instant;

use super::{Controller, FINAL_REPORT_GRACE, FINAL_WAIT_BOUND};
use crate::run::journaling::{self, Journaling};
use crate::scenario;
use crate::stats::{Ingested, Report};
use crate::wire::Event;
use crate::wire::decode::DecodeError;

impl Controller {
    /// Starts the journal of a new run in the state folder.
    pub(super) fn open_journal(&mut self) {
        let Some(dir) = self.settings.state_dir.clone() else {
            return;
        };
        let path = dir.join(format!("{}.journal", self.agg.run_id()));
        let start = crate::journal::record::Start {
            run_id: self.agg.run_id().to_owned(),
            started_unix_ms: journaling::unix_ms(self.clock.started_at),
            scenario_json: scenario::redacted(&self.scenario.file).to_string(),
            config_crc: self.fleet.config_crc(),
        };
        match Journaling::create(&path, start, self.scenario.file.report_interval) {
            Ok(j) => {
                tracing::info!("journal: {}", path.display());
                self.journal = Some(j);
            }
            Err(e) => {
                let why = format!(
                    "cannot start the journal {}: {e}; the run goes on without one",
                    path.display()
                );
                tracing::error!("{why}");
                self.notices.push(why);
            }
        }
    }

    /// Writes the journal when a write is due, then sends the acknowledgements it covers.
    pub(super) fn write_journal(&mut self, force: bool) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        if !force && !j.due(self.journal_written.elapsed()) {
            return;
        }
        self.journal_written = Instant::now();
        let at = journaling::millis(self.clock.elapsed());
        let acks = j.write(at, &self.pacing.state(), &self.outages, false);
        self.notices.append(&mut j.notices);
        for (worker, conn, seq) in acks {
            self.fleet.ack(&worker, conn, seq);
        }
    }

    pub(super) fn on_event(&mut self, ev: Event) {
        let at = self.clock.elapsed();
        match ev {
            Event::Joined {
                conn,
                hello,
                outbox,
                liveness,
            } => {
                let running = self.clock.start.is_some();
                if let Some(s) = self.fleet.join(conn, hello, outbox, liveness, at, running) {
                    self.started(&s);
                }
            }
            Event::Report {
                conn,
                worker,
                report,
                received,
            } => {
                let waited = received.elapsed();
                self.load.queued(waited);
                if let Ok(r) = &report {
                    let at = self.clock.elapsed().saturating_sub(waited);
                    self.load.arrived(conn, journaling::millis(at), r.end_ms);
                }
                self.on_report(&worker, conn, report);
            }
            Event::Goodbye {
                conn,
                worker,
                goodbye,
            } => self.fleet.goodbye(&worker, conn, &goodbye),
            Event::Left {
                conn,
                worker,
                reason,
            } => {
                self.load.gone(conn);
                let lost = self.fleet.lose(&worker, conn, at, &reason);
                self.lost(lost.as_slice());
            }
        }
    }

    /// Counts a report exactly once and acknowledges it, or rejects it saying why.
    fn on_report(&mut self, worker: &str, conn: u64, report: Result<Report, DecodeError>) {
        let result = match report {
            Ok(r) => match self.fleet.report_arrived(worker, conn, &r) {
                None => return,
                Some(Err(why)) => Err(why),
                Some(Ok(source)) => match self.agg.ingest(&source, &r) {
                    Ok(Ingested::Counted { bucket }) => {
                        let ack = (worker.to_owned(), conn, r.seq);
                        Ok(match self.journal.as_mut() {
                            // Acknowledged once it is in the journal.
                            Some(j) => j.counted(&source, &r, bucket, ack),
                            None => Some(ack),
                        })
                    }
                    // Counted before (a resend): acknowledged again, after the journal has it.
                    Ok(Ingested::Duplicate) => {
                        let ack = (worker.to_owned(), conn, r.seq);
                        Ok(match self.journal.as_mut() {
                            Some(j) => j.defer(ack),
                            None => Some(ack),
                        })
                    }
                    Err(e) => Err(e.to_string()),
                },
            },
            Err(e) if self.fleet.is_live(worker, conn) => Err(e.to_string()),
            Err(_) => return,
        };
        match result {
            Ok(Some((worker, conn, seq))) => self.fleet.ack(&worker, conn, seq),
            Ok(None) => {}
            Err(why) => {
                let lost = self.fleet.reject(worker, conn, &why, self.clock.elapsed());
                self.lost(lost.as_slice());
            }
        }
    }

    /// Tells every running worker to stop and waits for their final reports.
    pub(super) async fn stop_workers(&mut self) {
        self.fleet.stop_all(self.scenario.file.stop_timeout);
        let wait = self.scenario.file.stop_timeout + FINAL_REPORT_GRACE;
        // A master that fell behind still has reports to read: while they keep coming, the
        // wait goes on (up to a bound), so a backlog is counted rather than cut off.
        let last_chance = tokio::time::Instant::now() + wait * FINAL_WAIT_BOUND;
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        let mut show = tokio::time::interval(self.scenario.file.report_interval);
        // Whether any worker is still to stop is asked only when one may have (a goodbye, a
        // loss): asked at every report it walks thousands of workers thousands of times.
        let mut pending = self.fleet.any_stopping();
        while pending {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => {
                        let report = matches!(ev, Event::Report { .. });
                        if report {
                            let later = (tokio::time::Instant::now() + wait).min(last_chance);
                            deadline.as_mut().reset(later);
                        }
                        self.on_event(ev);
                        self.write_journal(false);
                        if !report {
                            pending = self.fleet.any_stopping();
                        }
                    }
                    None => break,
                },
                _ = show.tick() => {
                    self.write_journal(true);
                    self.show();
                    pending = self.fleet.any_stopping();
                }
                () = &mut deadline => {
                    let late = self.fleet.stopping();
                    tracing::warn!(?late, "no final report within {}", humantime::format_duration(wait));
                    break;
                }
            }
        }
    }
}
