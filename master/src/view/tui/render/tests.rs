//! Screens rendered into ratatui's `TestBackend` from a synthetic snapshot whose numbers are
//! known, then read back as text.

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::dashboard::TABLE_HEADERS;
use super::format::{compact, ms_short, nice_ceiling, percent, shorten};
use super::workers::WORKER_HEADERS;
use super::*;
use crate::outcome::{ArchPoint, SeriesPoint};
use crate::scenario::DEFAULT_LIMIT;
use crate::view::{Ratio, Row as Figures, WorkerRow};

fn figures(label: &str, arch: &str, requests: u64, s5xx: u64, p99_ms: f64) -> Figures {
    Figures {
        label: label.into(),
        arch: arch.into(),
        rps_now: requests as f64 / 60.0,
        requests,
        s2xx: requests - s5xx - 3,
        s5xx,
        ratio_5xx: s5xx as f64 / requests as f64,
        errors: 3,
        status: [0, requests - s5xx - 3, 0, 0, s5xx],
        error_kinds: [0, 0, 3, 0, 0],
        p50_ms: p99_ms / 8.0,
        p95_ms: p99_ms / 2.0,
        p99_ms,
        max_ms: p99_ms * 1.5,
        limit_5xx: None,
    }
}

/// Two arches: arm64 served 12000 requests with 100 5XX (0.83%, valid) and p99 80 ms; amd64 served 10000 with 200 5XX (2%, over the 1% limit) and p99 100 ms. So arm/amd is
/// x1.20 throughput and x0.80 p99.
fn snapshot() -> Snapshot {
    let by_arch = vec![
        Figures {
            limit_5xx: Some(DEFAULT_LIMIT),
            ..figures("amd64", "amd64", 10_000, 200, 100.0)
        },
        Figures {
            limit_5xx: Some(DEFAULT_LIMIT),
            ..figures("arm64", "arm64", 12_000, 100, 80.0)
        },
    ];
    let series = (1..=30)
        .map(|t| {
            let point = |rps: f64, ratio: f64, p99: f64| ArchPoint {
                rps,
                requests: rps as u64,
                ratio_5xx: ratio,
                errors: 0,
                p50_ms: p99 / 8.0,
                p95_ms: p99 / 2.0,
                p99_ms: p99,
                failures: 0,
                hdr: None,
            };
            SeriesPoint {
                t: f64::from(t),
                users: 40,
                rps: 370.0,
                by_arch: BTreeMap::from([
                    ("amd64".to_owned(), point(170.0, 0.02, 100.0)),
                    ("arm64".to_owned(), point(200.0, 0.008, 80.0)),
                ]),
                by_target: BTreeMap::new(),
            }
        })
        .collect();
    Snapshot {
        name: "arm-vs-amd".into(),
        elapsed: Duration::from_secs(30),
        duration: Duration::from_secs(90),
        stage: (1, 2),
        stage_target: 40,
        users_goal: 38,
        users_running: 36,
        users_shift: 4,
        users_step: 4,
        rps_now: 366.7,
        totals: figures("total", "", 22_000, 300, 95.0),
        ratios: Ratio::all(&by_arch),
        by_arch,
        by_target: vec![
            figures("amd", "amd64", 10_000, 200, 100.0),
            figures("arm", "arm64", 12_000, 100, 80.0),
        ],
        workers: vec![WorkerRow {
            id: "worker-1".into(),
            arch: "x86_64".into(),
            hostname: "loadgen-a".into(),
            users: 36,
            rps: 366.5,
            cpu_percent: 42.0,
            heartbeat_age: Duration::from_millis(400),
            state: "running",
        }],
        new_points: series,
        late_requests: 0,
        master_wait: Duration::ZERO,
        notices: vec![],
        phases: Vec::new(),
        failures: Vec::new(),
    }
}

/// The screen as lines of text, once the view has taken the snapshot in (its series points),
/// as the drawing thread does.
fn render(state: &UiState, snap: &Snapshot, width: u16, height: u16) -> Vec<String> {
    let mut state = state.clone();
    state.absorb(snap);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, &state, snap)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn line_starting<'a>(screen: &'a [String], first_word: &str) -> &'a str {
    screen
        .iter()
        .find(|l| l.split_whitespace().next() == Some(first_word))
        .unwrap_or_else(|| panic!("no line starts with {first_word}:\n{}", screen.join("\n")))
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn table_shows_the_numbers_the_ratio_and_the_valid_load_flag() {
    let screen = render(&UiState::default(), &snapshot(), 80, 24);
    // rps_now = requests / 60; compact counts; latencies p50 = p99/8, p95 = p99/2, max = 1.5 p99.
    assert_eq!(
        words(line_starting(&screen, "arm64")),
        [
            "arm64", "200.0", "12000", "11897", "100", "0.83", "3", "10.0", "40.0", "80.0", "120",
            "ok"
        ]
    );
    assert_eq!(
        words(line_starting(&screen, "amd64")),
        [
            "amd64", "166.7", "10000", "9797", "200", "2.00", "3", "12.5", "50.0", "100", "150",
            "5XX!"
        ]
    );
    // Target rows carry no validity flag (it is per arch).
    assert_eq!(words(line_starting(&screen, "arm")).len(), 11);
    // 12000 / 10000 and 80 / 100, under req/s and under p99.
    let ratio = line_starting(&screen, "arm64/amd64");
    assert_eq!(words(ratio), ["arm64/amd64", "×1.20", "×0.80"]);
    let header = line_starting(&screen, "req/s");
    let col = |line: &str, word: &str| line.find(word).map(|i| line[..i].chars().count());
    let end = |line: &str, word: &str| col(line, word).map(|c| c + word.chars().count());
    assert_eq!(end(ratio, "×1.20"), end(header, "req/s"));
    assert_eq!(end(ratio, "×0.80"), end(header, "p99"));
}

#[test]
fn both_sizes_render_whole_headers() {
    let snap = snapshot();
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = render(&UiState::default(), &snap, w, h);
        let text = screen.join("\n");
        assert_eq!(
            words(line_starting(&screen, "req/s")),
            TABLE_HEADERS[1..],
            "{w}x{h}:\n{text}"
        );
        assert!(
            text.contains("arm-vs-amd  stage 1/2 → 40 users  0:30 / 1:30 (1:00 left)"),
            "{w}x{h}:\n{text}"
        );
        assert!(
            text.contains("users 36/38 (+4)  workers 1  366.7 req/s"),
            "{w}x{h}:\n{text}"
        );
        for title in [
            " req/s ■amd64 ■arm64",
            " 5xx % ■amd64 ■arm64",
            " p99 ms ■amd64 ■arm64",
        ] {
            assert!(text.contains(title), "{w}x{h} lacks {title}:\n{text}");
        }
        // The time axis starts at the start of the run.
        assert!(text.contains("0:00"), "{w}x{h}:\n{text}");
        assert!(text.contains("+/- users ±4"), "{w}x{h}:\n{text}");

        let workers = render(
            &UiState {
                tab: Tab::Workers,
                ..UiState::default()
            },
            &snap,
            w,
            h,
        );
        assert_eq!(
            words(line_starting(&workers, "id")),
            WORKER_HEADERS,
            "{w}x{h}:\n{}",
            workers.join("\n")
        );
        assert_eq!(
            words(line_starting(&workers, "worker-1")),
            [
                "worker-1",
                "x86_64",
                "loadgen-a",
                "36",
                "366.5",
                "42",
                "0.4s",
                "running"
            ]
        );
    }
}

#[test]
fn the_wide_table_shows_exact_figures() {
    let screen = render(&UiState::default(), &snapshot(), 200, 60);
    assert_eq!(
        words(line_starting(&screen, "arm64")),
        [
            "arm64", "200.0", "12000", "11897", "100", "0.83", "3", "10.00", "40.00", "80.00",
            "120.00", "ok"
        ]
    );
    assert!(screen.iter().any(|l| l.contains("arm (arm64)")));
    assert!(screen.iter().any(|l| l.contains("arm64 vs amd64")));
    assert!(screen.iter().any(|l| l.contains(" events ")));
}

#[test]
fn help_lists_every_key_over_the_dashboard() {
    let state = UiState {
        help: true,
        ..UiState::default()
    };
    for (w, h) in [(80, 24), (200, 60)] {
        let text = render(&state, &snapshot(), w, h).join("\n");
        for (key, what) in KEYS {
            assert!(text.contains(key) && text.contains(what), "{key}:\n{text}");
        }
    }
}

#[test]
fn stopping_and_notices_show_in_the_footer() {
    let mut state = UiState::default();
    state.absorb(&Snapshot {
        elapsed: Duration::from_secs(12),
        notices: vec!["worker w2 joined".into()],
        ..Snapshot::default()
    });
    let text = render(&state, &snapshot(), 120, 30).join("\n");
    assert!(text.contains("0:12 worker w2 joined"), "{text}");
    state.apply(crate::view::tui::input::Action::Stop);
    let text = render(&state, &snapshot(), 120, 30).join("\n");
    assert!(
        text.contains("stopping: in-flight requests finish"),
        "{text}"
    );
}

#[test]
fn empty_and_tiny_screens_do_not_panic() {
    let empty = Snapshot::default();
    for (w, h) in [(80, 24), (200, 60), (20, 5), (1, 1), (80, 3)] {
        for tab in Tab::ALL {
            for help in [false, true] {
                let state = UiState {
                    tab,
                    help,
                    ..UiState::default()
                };
                render(&state, &empty, w, h);
                render(&state, &snapshot(), w, h);
            }
        }
    }
    let text = render(&UiState::default(), &empty, 80, 24).join("\n");
    assert!(text.contains("waiting for workers"), "{text}");
}

#[test]
fn numbers_fit_their_columns() {
    assert_eq!(compact(999_999.0), "999999");
    assert_eq!(compact(1_234_567.0), "1.23M");
    assert_eq!(compact(2.5), "2.5");
    assert_eq!(ms_short(0.4242), "0.42");
    assert_eq!(ms_short(12.34), "12.3");
    assert_eq!(ms_short(480.4), "480");
    assert_eq!(ms_short(12_345.0), "12s");
    assert_eq!(percent(0.0083), "0.83");
    assert_eq!(percent(1.0), "100.0");
    assert_eq!(nice_ceiling(0.3), 1.0);
    assert_eq!(nice_ceiling(370.0), 500.0);
    assert_eq!(nice_ceiling(1000.0), 1000.0);
    assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    assert_eq!(shorten("abcdef", 4), "abc…");
}

fn phase(arch: &str, phase: &'static str, count: u64, p99: f64) -> crate::view::PhaseRow {
    crate::view::PhaseRow {
        target: String::new(),
        arch: arch.into(),
        phase,
        figures: crate::outcome::PhaseFigures {
            count,
            p50: p99 / 2.0,
            p90: p99 / 1.5,
            p99,
            max: p99 * 2.0,
        },
    }
}

/// `p` opens the phases view: connect, TLS and TTFB p99 per arch, the arm/amd ratio of each,
/// and the failures by reason with the TLS error's reason; `p` again goes back.
#[test]
fn the_phases_view_shows_p99_per_arch_their_ratio_and_failures() {
    let snap = Snapshot {
        phases: vec![
            phase("amd64", "connect", 40, 0.4),
            phase("amd64", "tls", 40, 4.0),
            phase("amd64", "ttfb", 10_000, 12.5),
            phase("arm64", "connect", 36, 0.5),
            phase("arm64", "tls", 36, 2.0),
            phase("arm64", "ttfb", 12_000, 10.0),
        ],
        failures: vec![crate::outcome::FailureRow {
            target: "arm".into(),
            kind: "tls".into(),
            reason: "unknown issuer".into(),
            count: 3,
        }],
        ..snapshot()
    };
    let mut state = UiState::default();
    state.apply(crate::view::tui::input::Action::PhasesView);
    assert_eq!(state.tab, Tab::Phases);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = render(&state, &snap, w, h);
        let text = screen.join("\n");
        assert!(text.contains("phases per arch (p99)"), "{text}");
        assert_eq!(
            words(line_starting(&screen, "arch")),
            [
                "arch",
                "connect",
                "p99",
                "TLS",
                "p99",
                "TTFB",
                "p99",
                "connects",
                "handshakes"
            ]
        );
        assert_eq!(
            words(line_starting(&screen, "arm64")),
            [
                "arm64", "0.50", "ms", "2.00", "ms", "10.0", "ms", "36", "36"
            ]
        );
        assert_eq!(
            words(line_starting(&screen, "amd64")),
            [
                "amd64", "0.40", "ms", "4.00", "ms", "12.5", "ms", "40", "40"
            ]
        );
        // arm64 over the amd64 baseline: connect 0.5/0.4, TLS 2/4, TTFB 10/12.5.
        assert_eq!(
            words(line_starting(&screen, "arm64/amd64")),
            ["arm64/amd64", "x1.25", "x0.50", "x0.80"]
        );
        assert_eq!(
            words(line_starting(&screen, "arm")),
            ["arm", "tls", "unknown", "issuer", "3"]
        );
    }
    state.apply(crate::view::tui::input::Action::PhasesView);
    assert_eq!(state.tab, Tab::Dashboard);
    // Before any phase: the view says why it is empty.
    state.apply(crate::view::tui::input::Action::PhasesView);
    let text = render(&state, &snapshot(), 120, 30).join("\n");
    assert!(text.contains("no phases yet"), "{text}");
}

#[test]
fn ratios_carry_their_interval_once_the_series_is_long_enough() {
    let mut snap = snapshot();
    let screen = render(&UiState::default(), &snap, 80, 24);
    let text = screen.join("\n");
    // The fixture's series is constant: zero-width intervals (and ×1.20 is no 1).
    let row = line_starting(&screen, "95%");
    assert_eq!(words(row), ["95%", "±", "±0.00", "±0.00"], "{text}");
    // Too short a series: no interval row at all.
    snap.new_points.truncate(5);
    let screen = render(&UiState::default(), &snap, 80, 24);
    assert!(!screen.join("\n").contains("95% ±"));
}
