//! The capacity search of one arch, as a pure state machine: it is told the closed intervals of
//! its arch and the time, and says which level to run. Coarse steps up while the SLO holds;
//! after the first level that breaches, back to the last good one and up again by the fine
//! step until a breach: the last good level is the knee.

use serde::{Deserialize, Serialize};

use crate::outcome::{End, Phase, Spread, Step};

/// The rules of one search, in plain numbers (seconds, milliseconds, ratios).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub start: f64,
    pub step: f64,
    pub fine_step: f64,
    pub max: f64,
    /// Seconds of measured intervals each level needs to pass.
    pub hold_s: f64,
    /// Seconds discarded at the start of each level.
    pub settle_s: f64,
    /// Level units per second the load may move (the spawn rate); the ramp adds to the settle.
    pub ramp_per_s: Option<f64>,
    pub slo_5xx: f64,
    pub slo_p99_ms: Option<f64>,
    pub consecutive: u32,
    /// Open model: a level passes only if its good answers kept up with the rate offered.
    #[serde(default)]
    pub keep_up: Option<KeepUp>,
}

/// The open model's test of a level that kept its SLO: the answers must keep up with the
/// arrivals, or the requests are piling up (a queue filling, or the in-flight bound reached)
/// and the level cannot be sustained, however few 5XX the hold saw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeepUp {
    /// Shortfall allowed, as a fraction of the offered requests.
    pub tolerance: f64,
    /// Arrivals are Poisson: their own count varies too (allowed up to 3 standard deviations).
    pub poisson: bool,
}

/// One closed interval of this arch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Interval {
    /// End of the interval, seconds since the run started.
    pub end_s: f64,
    pub length_s: f64,
    pub requests: u64,
    /// 5XX answers plus transport errors.
    pub bad: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Interval {
    fn bad_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.bad as f64 / self.requests as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum State {
    /// Measuring `level`; `low` is the highest level that passed, `high` the lowest that breached.
    Measuring {
        phase: Phase,
        level: f64,
        low: Option<f64>,
        high: Option<f64>,
    },
    Done(End),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Search {
    rules: Rules,
    state: State,
    started_s: f64,
    /// Measurement of the current level starts here.
    measure_from_s: f64,
    measured: Vec<Interval>,
    breach_run: u32,
    /// A confirmation that breached: why (it still measures its whole hold).
    #[serde(default)]
    confirm_breach: Option<String>,
    steps: Vec<Step>,
}

impl Search {
    /// A search that starts at `now_s` from level 0.
    pub fn new(rules: Rules, now_s: f64) -> Search {
        let level = rules.start.min(rules.max);
        let mut s = Search {
            state: State::Done(End::Unfinished),
            rules,
            started_s: now_s,
            measure_from_s: now_s,
            measured: Vec::new(),
            breach_run: 0,
            confirm_breach: None,
            steps: Vec::new(),
        };
        s.enter(Phase::Coarse, level, None, None, 0.0, now_s);
        s
    }

    /// A one-level measurement of `level` from `now_s` (the confirmation of a knee): it ends
    /// `MaxReached` when the level keeps the SLO, `BreachedAtStart` when it does not.
    pub fn confirm(mut rules: Rules, level: f64, now_s: f64) -> Search {
        rules.start = level;
        rules.max = level;
        // Every arch is already at its level: only the settle time applies.
        rules.ramp_per_s = None;
        let mut s = Search::new(rules, now_s);
        s.enter(Phase::Confirm, level, None, None, level, now_s);
        s
    }

    /// After a master outage: the level being measured is measured afresh from `now_s` (what
    /// was measured before the gap is not mixed with what comes after it), ramping from zero.
    pub fn resume(&mut self, now_s: f64) {
        if let State::Measuring {
            phase,
            level,
            low,
            high,
        } = self.state
        {
            self.enter(phase, level, low, high, 0.0, now_s);
        }
    }

    /// Sets the open model's test of a level (how its arrivals are spaced is known later).
    pub fn set_keep_up(&mut self, keep_up: Option<KeepUp>) {
        self.rules.keep_up = keep_up;
    }

    /// The level to run now: the one being measured, or, once done, the knee (0 if none).
    pub fn level(&self) -> f64 {
        match self.state {
            State::Measuring { level, .. } => level,
            State::Done(_) => self.knee().map_or(0.0, |k| k.level),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// Why it ended (`Unfinished` while it goes on).
    pub fn end(&self) -> End {
        match self.state {
            State::Done(end) => end,
            State::Measuring { .. } => End::Unfinished,
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The highest level that passed.
    pub fn knee(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.passed)
            .max_by(|a, b| a.level.total_cmp(&b.level))
    }

    /// The good throughput at the knee: the most the arch served within its SLO. (Not the
    /// best of all passing levels: that would pick the luckiest measurement, and in a closed
    /// model throughput only grows with load up to the knee.)
    pub fn max_sustainable_rps(&self) -> Option<f64> {
        self.knee().map(|k| k.ok_rps)
    }

    /// Takes one closed interval, at `now_s` into the run (an interval closes a while after it
    /// ends: a new level takes effect from now, not from the interval's end); returns a line
    /// worth telling when a level was decided.
    pub fn observe(&mut self, iv: &Interval, now_s: f64) -> Option<String> {
        let State::Measuring {
            phase,
            level,
            low,
            high,
        } = self.state
        else {
            return None;
        };
        // Intervals that began before the level settled say nothing about it.
        if iv.end_s - iv.length_s < self.measure_from_s - 1e-6 {
            return None;
        }
        self.measured.push(iv.clone());
        let breach = self.breach_of(iv);
        if breach.is_some() {
            self.breach_run += 1;
        } else if iv.requests > 0 {
            self.breach_run = 0;
        }
        let measured_s: f64 = self.measured.iter().map(|m| m.length_s).sum();
        let now = now_s.max(iv.end_s);
        if self.breach_run >= self.rules.consecutive {
            let why = breach.unwrap_or_default();
            if phase != Phase::Confirm {
                return Some(self.breached(phase, level, low, why, now));
            }
            // A confirmation is a measurement, not a step of the search: it runs its whole
            // hold, so every arch's knee throughput (and its spread) covers the same span.
            self.confirm_breach.get_or_insert(why);
        }
        let held = measured_s + 1e-6 >= self.rules.hold_s;
        if held
            && phase == Phase::Confirm
            && let Some(why) = self.confirm_breach.take()
        {
            return Some(self.breached(phase, level, low, why, now));
        }
        if held && self.breach_run == 0 {
            if let Some(why) = self.shortfall(level) {
                return Some(self.breached(phase, level, low, why, now));
            }
            let requests: u64 = self.measured.iter().map(|m| m.requests).sum();
            if requests == 0 {
                let why = "no answers".to_owned();
                self.record(phase, level, false, Some(why), now);
                self.state = State::Done(if low.is_some() {
                    End::Knee
                } else {
                    End::BreachedAtStart
                });
                return Some(format!("level {level}: no answers"));
            }
            self.record(phase, level, true, None, now);
            let next = match phase {
                Phase::Coarse | Phase::Confirm => (level + self.rules.step).min(self.rules.max),
                Phase::Fine => level + self.rules.fine_step,
            };
            let ceiling = high.unwrap_or(self.rules.max);
            if level >= self.rules.max - 1e-9 {
                self.state = State::Done(End::MaxReached);
                return Some(format!("level {level} passed: the maximum, search over"));
            }
            if phase == Phase::Fine && next >= ceiling - 1e-9 {
                self.state = State::Done(End::Knee);
                return Some(format!("level {level} passed: knee found"));
            }
            self.enter(phase, next, Some(level), high, level, now);
            return Some(format!("level {level} passed; next {next}"));
        }
        None
    }

    /// Records `level` as breached (`why`) and moves on: back to the last good level and up
    /// by the fine step, or done. Returns the line to tell.
    fn breached(
        &mut self,
        phase: Phase,
        level: f64,
        low: Option<f64>,
        why: String,
        now: f64,
    ) -> String {
        self.record(phase, level, false, Some(why.clone()), now);
        let (next_phase, next) = match (phase, low) {
            (_, None) => {
                self.state = State::Done(End::BreachedAtStart);
                return format!("level {level} breached ({why}) at the start");
            }
            (Phase::Coarse, Some(good)) => (Phase::Fine, good + self.rules.fine_step),
            (Phase::Fine | Phase::Confirm, Some(_)) => {
                self.state = State::Done(End::Knee);
                return format!("level {level} breached ({why}): knee found");
            }
        };
        if next >= level - 1e-9 {
            // The fine step cannot land between the last good level and this one.
            self.state = State::Done(End::Knee);
            return format!("level {level} breached ({why}): knee found");
        }
        self.enter(next_phase, next, low, Some(level), level, now);
        format!("level {level} breached ({why}); refining from {next}")
    }

    /// Open model: why the measured intervals of `level` (a rate) fell short of it, if they
    /// did beyond the tolerance, two requests at the window's edges, what may still be in
    /// flight and, for Poisson arrivals, three standard deviations of their count.
    fn shortfall(&self, level: f64) -> Option<String> {
        let keep_up = self.rules.keep_up?;
        let seconds: f64 = self.measured.iter().map(|m| m.length_s).sum();
        let good: u64 = self
            .measured
            .iter()
            .map(|m| m.requests.saturating_sub(m.bad))
            .sum();
        let offered = level * seconds;
        // What may still be in flight when the window closes (the rate times its slowest
        // answers, Little's law) is late, not missing: a stall of the machine is not a breach.
        let slowest_s = self.measured.iter().map(|m| m.p99_ms).fold(0.0, f64::max) / 1000.0;
        let mut slack = keep_up.tolerance * offered + 2.0 + level * slowest_s;
        if keep_up.poisson {
            slack += 3.0 * offered.sqrt();
        }
        (seconds > 0.0 && (good as f64) + slack < offered).then(|| {
            format!(
                "answered {:.1} req/s of {level} offered: not keeping up",
                good as f64 / seconds
            )
        })
    }

    /// Why an interval breaches the SLO, if it does.
    fn breach_of(&self, iv: &Interval) -> Option<String> {
        if iv.requests == 0 {
            return None;
        }
        let ratio = iv.bad_ratio();
        if ratio > self.rules.slo_5xx {
            return Some(format!(
                "5XX+errors {:.2}% > {:.2}%",
                ratio * 100.0,
                self.rules.slo_5xx * 100.0
            ));
        }
        match self.rules.slo_p99_ms {
            Some(limit) if iv.p99_ms > limit => {
                Some(format!("p99 {:.1} ms > {limit:.1} ms", iv.p99_ms))
            }
            _ => None,
        }
    }

    /// Starts measuring `level`, coming from `from` (for the ramp time).
    fn enter(
        &mut self,
        phase: Phase,
        level: f64,
        low: Option<f64>,
        high: Option<f64>,
        from: f64,
        now_s: f64,
    ) {
        let ramp_s = self
            .rules
            .ramp_per_s
            .filter(|r| *r > 0.0)
            .map_or(0.0, |r| (level - from).abs() / r);
        self.started_s = now_s;
        self.measure_from_s = now_s + ramp_s + self.rules.settle_s;
        self.measured.clear();
        self.breach_run = 0;
        self.confirm_breach = None;
        self.state = State::Measuring {
            phase,
            level,
            low,
            high,
        };
    }

    fn record(&mut self, phase: Phase, level: f64, passed: bool, breach: Option<String>, now: f64) {
        let requests: u64 = self.measured.iter().map(|m| m.requests).sum();
        let bad: u64 = self.measured.iter().map(|m| m.bad).sum();
        let seconds: f64 = self.measured.iter().map(|m| m.length_s).sum();
        let mut p50s: Vec<f64> = self
            .measured
            .iter()
            .filter(|m| m.requests > 0)
            .map(|m| m.p50_ms)
            .collect();
        p50s.sort_by(f64::total_cmp);
        self.steps.push(Step {
            level,
            phase,
            started_s: self.started_s,
            ended_s: now,
            measured_from_s: self.measured.first().map_or(now, |m| m.end_s - m.length_s),
            measured_to_s: self.measured.last().map_or(now, |m| m.end_s),
            rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            ok_rps: if seconds > 0.0 {
                requests.saturating_sub(bad) as f64 / seconds
            } else {
                0.0
            },
            ok_rps_windows: self.window_spread(),
            requests,
            ratio_bad: if requests > 0 {
                bad as f64 / requests as f64
            } else {
                0.0
            },
            p50_ms: p50s.get(p50s.len() / 2).copied().unwrap_or(0.0),
            p99_ms: self
                .measured
                .iter()
                .filter(|m| m.requests > 0)
                .map(|m| m.p99_ms)
                .fold(0.0, f64::max),
            passed,
            breach,
        });
    }

    /// The good throughput of each measured interval: how many, the lowest, the highest.
    fn window_spread(&self) -> Option<Spread> {
        let rates: Vec<f64> = self
            .measured
            .iter()
            .filter(|m| m.length_s > 0.0)
            .map(|m| m.requests.saturating_sub(m.bad) as f64 / m.length_s)
            .collect();
        let min = rates.iter().copied().reduce(f64::min)?;
        let max = rates.iter().copied().reduce(f64::max)?;
        Some(Spread {
            count: u32::try_from(rates.len()).unwrap_or(u32::MAX),
            min,
            max,
        })
    }

    /// Ends an unfinished search (the run is over).
    pub fn cut(&mut self) {
        if !self.is_done() {
            self.state = State::Done(End::Unfinished);
        }
    }
}

#[cfg(test)]
mod tests;
