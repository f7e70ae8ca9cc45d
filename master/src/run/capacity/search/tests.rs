use super::*;

fn rules() -> Rules {
    Rules {
        start: 2.0,
        step: 4.0,
        fine_step: 1.0,
        max: 100.0,
        hold_s: 3.0,
        settle_s: 1.0,
        ramp_per_s: None,
        slo_5xx: 0.01,
        slo_p99_ms: Some(100.0),
        consecutive: 2,
        keep_up: None,
    }
}

/// A one-second interval ending at `t` that keeps any SLO: 100 requests, none bad, p99 10 ms.
fn good(t: f64) -> Interval {
    Interval {
        end_s: t,
        length_s: 1.0,
        requests: 100,
        bad: 0,
        p50_ms: 5.0,
        p99_ms: 10.0,
    }
}

/// A server that keeps its SLO up to `capacity` (inclusive), serving 10 req/s per level.
struct Fake {
    capacity: f64,
    t: f64,
}

impl Fake {
    fn next(&mut self, level: f64) -> Interval {
        self.t += 1.0;
        let over = level > self.capacity;
        Interval {
            end_s: self.t,
            length_s: 1.0,
            requests: (level * 10.0) as u64,
            bad: if over { (level * 2.0) as u64 } else { 0 },
            p50_ms: 10.0,
            p99_ms: 20.0,
        }
    }
}

fn run(rules: Rules, capacity: f64) -> Search {
    let mut s = Search::new(rules, 0.0);
    let mut f = Fake { capacity, t: 0.0 };
    for _ in 0..1000 {
        if s.is_done() {
            break;
        }
        let iv = f.next(s.level());
        s.observe(&iv, iv.end_s);
    }
    assert!(s.is_done());
    s
}

#[test]
fn coarse_then_fine_finds_the_knee() {
    let s = run(rules(), 11.0);
    assert_eq!(s.end(), End::Knee);
    let levels: Vec<(f64, bool)> = s.steps().iter().map(|st| (st.level, st.passed)).collect();
    assert_eq!(
        levels,
        vec![
            (2.0, true),
            (6.0, true),
            (10.0, true),
            (14.0, false),
            (11.0, true),
            (12.0, false)
        ]
    );
    assert_eq!(s.knee().unwrap().level, 11.0);
    assert_eq!(s.max_sustainable_rps(), Some(110.0));
    // Once done it holds the knee.
    assert_eq!(s.level(), 11.0);
}

#[test]
fn fine_steps_stop_below_the_breached_level() {
    // Capacity 13: 10 passes, 14 breaches, 11, 12, 13 pass, 14 is known bad.
    let s = run(rules(), 13.0);
    assert_eq!(s.end(), End::Knee);
    assert_eq!(s.knee().unwrap().level, 13.0);
    assert_eq!(s.steps().iter().filter(|st| st.level == 14.0).count(), 1);
}

#[test]
fn breach_at_start_and_max_reached() {
    let s = run(rules(), 1.0);
    assert_eq!(s.end(), End::BreachedAtStart);
    assert!(s.knee().is_none());
    assert_eq!(s.level(), 0.0);
    let s = run(rules(), 1000.0);
    assert_eq!(s.end(), End::MaxReached);
    assert_eq!(s.knee().unwrap().level, 100.0);
}

#[test]
fn settle_intervals_are_not_measured_and_one_bad_interval_is_not_a_breach() {
    let mut s = Search::new(rules(), 0.0);
    let slow = |t: f64| Interval {
        p99_ms: 500.0,
        ..good(t)
    };
    // The first interval (0..1 s) is within the settle time: even a bad one is ignored.
    assert!(s.observe(&slow(1.0), 1.0).is_none());
    assert!(s.observe(&good(2.0), 2.0).is_none());
    // One slow interval between good ones does not make K = 2 in a row.
    assert!(s.observe(&slow(3.0), 3.0).is_none());
    assert!(
        s.observe(&good(4.0), 4.0).is_some(),
        "3 s measured: decided"
    );
    assert!(s.steps()[0].passed);
    assert_eq!(s.steps()[0].p99_ms, 500.0);
    assert_eq!(s.level(), 6.0);
}

#[test]
fn p99_breach_and_ramp_time() {
    let mut r = rules();
    r.ramp_per_s = Some(2.0);
    let mut s = Search::new(r, 0.0);
    // Level 2 at 2/s: 1 s of ramp, 1 s of settle; measurement from 2 s.
    let slow = |t: f64| Interval {
        end_s: t,
        length_s: 1.0,
        requests: 10,
        bad: 0,
        p50_ms: 50.0,
        p99_ms: 150.0,
    };
    assert!(s.observe(&slow(1.0), 1.0).is_none());
    assert!(s.observe(&slow(2.0), 2.0).is_none());
    assert!(s.observe(&slow(3.0), 3.0).is_none());
    let said = s.observe(&slow(4.0), 4.0).unwrap();
    assert!(said.contains("p99"), "{said}");
    assert_eq!(s.end(), End::BreachedAtStart);
}

#[test]
fn a_new_level_is_measured_from_when_it_was_set_not_from_the_intervals_end() {
    let mut s = Search::new(rules(), 0.0);
    for t in 1..=4 {
        s.observe(&good(f64::from(t)), f64::from(t) + 1.5);
    }
    // Level 2 passed when the interval ending at 4 s closed, at 5.5 s: level 6 runs from
    // 5.5 s, settles until 6.5 s; the intervals ending at 5 and 6 s are not its own.
    assert_eq!(s.level(), 6.0);
    let bad = |t: f64| Interval {
        bad: 100,
        ..good(t)
    };
    assert!(s.observe(&bad(5.0), 6.5).is_none());
    assert!(s.observe(&bad(6.0), 7.5).is_none());
    assert!(s.observe(&good(7.0), 8.5).is_none());
    assert_eq!(s.steps().len(), 1);
}

#[test]
fn a_confirmation_measures_one_level_once() {
    let mut r = rules();
    r.ramp_per_s = Some(0.1);
    let mut s = Search::confirm(r, 7.0, 10.0);
    assert_eq!(s.level(), 7.0);
    let mut f = Fake {
        capacity: 7.0,
        t: 10.0,
    };
    while !s.is_done() {
        let iv = f.next(s.level());
        s.observe(&iv, iv.end_s);
    }
    assert_eq!(s.end(), End::MaxReached);
    assert_eq!(s.steps().len(), 1);
    assert_eq!(s.steps()[0].phase, Phase::Confirm);
    // Settle only (1 s), no ramp: decided after 1 + 3 s.
    assert_eq!(s.steps()[0].ended_s, 14.0);
}

/// A confirmation that breaches still measures its whole hold: its figures cover the same
/// span as every other arch's.
#[test]
fn a_breaching_confirmation_runs_its_whole_hold() {
    let mut s = Search::confirm(rules(), 9.0, 10.0);
    let mut f = Fake {
        capacity: 7.0,
        t: 10.0,
    };
    while !s.is_done() {
        let iv = f.next(s.level());
        s.observe(&iv, iv.end_s);
    }
    assert_eq!(s.end(), End::BreachedAtStart);
    let step = &s.steps()[0];
    assert!(!step.passed && step.breach.is_some(), "{step:?}");
    // Settle 1 s, then the 3 s hold, though it breached from its first two intervals.
    assert_eq!((step.measured_from_s, step.measured_to_s), (11.0, 14.0));
}

#[test]
fn silent_level_breaches() {
    let mut s = Search::new(rules(), 0.0);
    for t in 1..=4 {
        let iv = Interval {
            end_s: f64::from(t),
            length_s: 1.0,
            ..Interval::default()
        };
        s.observe(&iv, iv.end_s);
    }
    assert!(s.is_done());
    assert_eq!(s.steps()[0].breach.as_deref(), Some("no answers"));
}

/// Open model: a server that answers at most `capacity` req/s, queueing the rest without a
/// single 5XX. The answers falling short of the rate is the breach, so the knee is the last
/// rate it kept up with, not the first one whose queue overflowed.
#[test]
fn an_open_model_level_not_kept_up_with_breaches_without_any_5xx() {
    let mut r = rules();
    (r.start, r.step, r.fine_step, r.slo_p99_ms) = (20.0, 20.0, 5.0, None);
    r.keep_up = Some(KeepUp {
        tolerance: 0.03,
        poisson: false,
    });
    let capacity = 52.0;
    let mut s = Search::new(r, 0.0);
    let mut t = 0.0;
    while !s.is_done() && t < 1000.0 {
        t += 1.0;
        let answered = s.level().min(capacity);
        let iv = Interval {
            end_s: t,
            length_s: 1.0,
            requests: answered as u64,
            bad: 0,
            p50_ms: 5.0,
            p99_ms: 10.0,
        };
        s.observe(&iv, t);
    }
    assert_eq!(s.end(), End::Knee);
    assert_eq!(s.knee().map(|k| k.level), Some(50.0));
    let breach = s.steps().iter().find(|st| !st.passed).unwrap();
    assert_eq!(breach.level, 60.0);
    let why = breach.breach.as_deref().unwrap();
    assert!(why.contains("answered 52.0 req/s of 60 offered"), "{why}");
    // 55 offered, 52 answered: 5% short, past the 3% allowed.
    assert!(!s.steps().iter().any(|st| st.level == 55.0 && st.passed));

    // Poisson arrivals: the same shortfall within chance (3 standard deviations) passes.
    let mut s = Search::new(
        Rules {
            start: 50.0,
            max: 50.0,
            keep_up: Some(KeepUp {
                tolerance: 0.03,
                poisson: true,
            }),
            slo_p99_ms: None,
            ..rules()
        },
        0.0,
    );
    for t in 1..=4 {
        let iv = Interval {
            end_s: f64::from(t),
            length_s: 1.0,
            requests: 44,
            ..good(f64::from(t))
        };
        s.observe(&iv, f64::from(t));
    }
    assert_eq!(s.end(), End::MaxReached, "{:?}", s.steps());
}
