//! Taking up a run a journal recorded: the counted reports, the workers that took part, the
//! plan's position and the run's clock come back from the journal; the gap since its last
//! record is an outage. The workers, which kept what was not acknowledged, redial and resend:
//! the resent reports that the journal holds are known and counted once.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::controller::{Controller, RunSettings};
use super::journaling::{Journaling, Resume};
use super::pacing::PacingState;
use crate::journal::{self, Journal, Writer};
use crate::scenario::{self, Scenario};
use crate::view::View;
use crate::wire::Event;

/// Why a journal cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{0}: the run it records has finished (its summary: `stampede-master recover`)")]
    Ended(String),
    #[error(
        "{0}: the scenario differs from the one the run was started with (targets, requests or load): resume it with the same scenario and overrides"
    )]
    OtherScenario(String),
    #[error("{path}: cannot go on writing it: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl Controller {
    /// A controller that goes on with the run `journal` recorded.
    pub fn resume(
        scenario: Scenario,
        settings: RunSettings,
        events: mpsc::Receiver<Event>,
        view: Box<dyn View>,
        stop: CancellationToken,
        journal: Journal,
    ) -> Result<Controller, ResumeError> {
        let path = journal.path.display().to_string();
        if journal.ended {
            return Err(ResumeError::Ended(path));
        }
        let run_id = journal.start.run_id.clone();
        let config = scenario::compile(&scenario, &run_id);
        if {
            use prost::Message;
            crc32fast::hash(&config.encode_to_vec())
        } != journal.start.config_crc
        {
            return Err(ResumeError::OtherScenario(path));
        }
        if let Some(torn) = &journal.torn {
            tracing::warn!(
                "journal {path}: its last {} bytes are dropped ({}); the run goes on from before them",
                std::fs::metadata(&journal.path)
                    .map_or(0, |m| m.len())
                    .saturating_sub(journal.good),
                torn.why
            );
        }
        let writer = Writer::resume(&journal.path, journal.good, scenario.file.report_interval)
            .map_err(|source| ResumeError::Write {
                path: path.clone(),
                source,
            })?;
        let progress = journal.progress.as_ref();
        let pacing = progress.and_then(|p| serde_json::from_str(&p.pacing_json).ok());
        let outages = progress
            .map(|p| {
                p.outages
                    .iter()
                    .map(|o| {
                        (
                            Duration::from_millis(o.from_ms),
                            Duration::from_millis(o.to_ms),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let started_at =
            SystemTime::UNIX_EPOCH + Duration::from_millis(journal.start.started_unix_ms);
        let mut c = Controller::for_run(scenario, settings, events, view, stop, run_id);
        c.restore_counts(journal.agg, journal.workers);
        c.set_resume(Resume {
            started_at,
            last: Duration::from_millis(journal.last_ms),
            pacing,
            outages,
            writer,
        });
        Ok(c)
    }

    /// Starts again: the clock goes on from the run's start, the time since the journal's last
    /// record is an outage, the plan and any capacity search stand where they stood.
    pub(super) fn take_up(&mut self, r: Resume) {
        let since_start = SystemTime::now()
            .duration_since(r.started_at)
            .unwrap_or(r.last);
        let start = Instant::now()
            .checked_sub(since_start)
            .unwrap_or_else(Instant::now);
        let now = since_start.max(r.last);
        let mut outages = r.outages;
        outages.push((r.last, now));
        tracing::warn!(
            run_id = self.run_id(),
            "run resumed {} after its journal's last record",
            humantime::format_duration(Duration::from_secs(now.saturating_sub(r.last).as_secs()))
        );
        let interval = self.report_interval();
        self.set_clock(start, r.started_at);
        self.set_outages(outages);
        if let Some(state) = r.pacing {
            self.restore_pacing(state, now);
        }
        self.set_journal(Journaling::resume(r.writer, interval));
    }
}

/// The newest journal in `dir` whose run has not finished.
pub fn newest_unfinished(dir: &std::path::Path) -> Option<Journal> {
    let mut candidates: Vec<(SystemTime, std::path::PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .filter_map(|(_, p)| journal::read(&p).ok())
        .find(|j| !j.ended)
}

/// The summary of the run a journal recorded, as far as the journal goes: for a master that
/// died and was never restarted (`stampede-master recover`).
pub fn recover(journal: Journal) -> Result<crate::outcome::Summary, String> {
    use crate::outcome::{self, Recovered};
    let path = journal.path.display().to_string();
    let scenario = Scenario::from_file(journal.scenario.clone())
        .map_err(|(key, why)| format!("{path}: the journal's scenario: `{key}`: {why}"))?;
    let mut agg = journal.agg;
    agg.close_all();
    let progress = journal.progress.as_ref();
    let outages: Vec<(Duration, Duration)> = progress
        .map(|p| {
            p.outages
                .iter()
                .map(|o| {
                    (
                        Duration::from_millis(o.from_ms),
                        Duration::from_millis(o.to_ms),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let lost: Duration = outages.iter().map(|(a, b)| b.saturating_sub(*a)).sum();
    let capacity = progress
        .and_then(|p| serde_json::from_str::<PacingState>(&p.pacing_json).ok())
        .and_then(|state| {
            let mut pacing = super::pacing::Pacing::new(&scenario);
            pacing.restore(state, Duration::ZERO);
            pacing.capacity_report()
        });
    let started_at = SystemTime::UNIX_EPOCH + Duration::from_millis(journal.start.started_unix_ms);
    let last = Duration::from_millis(journal.last_ms);
    let facts = crate::stats::RunFacts {
        scenario: &scenario,
        started_at,
        ended_at: started_at + last,
        duration: journal
            .load_ms
            .map_or(last.saturating_sub(lost), Duration::from_millis),
        workers: journal.workers,
        capacity,
        aborted: None,
        master: None,
    };
    let mut summary = crate::stats::summary(&agg, facts);
    outcome::judge_all(&mut summary, &scenario.thresholds);
    summary.ended = Some("recovered".to_owned());
    summary.outages = outages
        .iter()
        .map(|(from, to)| outcome::Outage {
            from_s: from.as_secs_f64(),
            to_s: to.as_secs_f64(),
        })
        .collect();
    summary.recovered = Some(Recovered {
        journal_until_s: last.as_secs_f64(),
        note: format!(
            "rebuilt from {path}: every report its master had counted and acknowledged; requests made after {:.1} s (at most the last report interval of each worker, which its workers never saw acknowledged) are not in it",
            last.as_secs_f64()
        ),
    });
    if let Some(torn) = journal.torn {
        tracing::warn!("journal {path}: its tail is dropped ({})", torn.why);
    }
    Ok(summary)
}
