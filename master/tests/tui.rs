//! The live view in a real terminal: `stampede-master demo` runs in a detached tmux session of
//! 80x24; the screen must show arm64 and amd64 rows with live numbers, `+` must bring one more
//! user running, `e` must write the summary so far, `q` must stop the run gracefully (exit 0,
//! the summary written), and the terminal must be given back (the end-of-run lines are on the
//! normal screen afterwards). Skips, saying why, without tmux.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The demo's run time: `q` ends it long before, this is only the margin on a busy machine.
const RUN_TIME_S: u64 = 60;
/// How long the demo may take to show both arches (it compiles nothing; this is start-up,
/// the ramp and the first report intervals on a busy machine).
const SHOW_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after `q` the master may take to exit: the stop timeout (10s) and the final-report
/// grace (5s) at worst, then workers, servers and the runtime wind down (5s bounds each).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a key may take to show its effect (a heartbeat or two, the ramp).
const KEY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(500);

/// A private tmux server (its socket in the test's folder), killed when the test ends.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    fn send(&self, target: &str, keys: &str) {
        let sent = self.cmd(&["send-keys", "-t", target, keys]);
        assert!(sent.status.success(), "send-keys {keys}");
    }

    fn screen(&self, target: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", target]).stdout)
            .into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `(req/s now, total)` of the table row whose first word is `arch`, once both are numbers.
fn live_figures(screen: &str, arch: &str) -> Option<(f64, f64)> {
    let line = screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(arch))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let rps = words.get(1)?.parse().ok()?;
    let total = words.get(2)?.parse().ok()?;
    Some((rps, total))
}

fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn quote(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

/// A demo run in its own tmux server, with its folder and summary path (the server goes
/// first, then the folder).
struct Demo {
    tmux: Tmux,
    dir: tempfile::TempDir,
    summary: std::path::PathBuf,
}

const SESSION: &str = "demo";

impl Demo {
    /// Starts `stampede-master demo` in a detached 80x24 session; `None` (after saying why)
    /// when tmux is absent.
    fn start() -> Option<Demo> {
        if !tmux_available() {
            eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let summary = dir.path().join("summary.json");
        let bin = Path::new(env!("CARGO_BIN_EXE_stampede-master"));
        // The inner shell writes its pid and becomes the master (`exec`), in the foreground
        // with the pane's terminal; the outer one writes the master's exit status. tmux's own
        // `pane_dead_status` is not used: tmux 3.3 now and then misses the child's exit.
        let inner = format!(
            "echo $$ > master.pid; exec {bin} demo --run-time {RUN_TIME_S}s --users 4 --summary {summary}",
            bin = quote(bin),
            summary = quote(&summary),
        );
        let script = format!(
            "cd {dir} && sh -c {inner}; echo $? > master.status",
            dir = quote(dir.path()),
            inner = shell_quote(&inner),
        );
        let tmux = Tmux {
            socket: dir.path().join("tmux.sock"),
        };
        let started = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            "80",
            "-y",
            "24",
            "sh",
            "-c",
            &script,
            ";",
            "set-option",
            "-t",
            SESSION,
            "remain-on-exit",
            "on",
        ]);
        assert!(
            started.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        Some(Demo { tmux, dir, summary })
    }

    fn screen(&self) -> String {
        self.tmux.screen(SESSION)
    }

    fn send(&self, keys: &str) {
        self.tmux.send(SESSION, keys);
    }

    /// `(req/s, total)` of the arm64 and amd64 rows once both show live numbers.
    fn wait_live(&self) -> ((f64, f64), (f64, f64), String) {
        let mut last = String::new();
        let shown = wait_for(SHOW_TIMEOUT, || {
            last = self.screen();
            let arm = live_figures(&last, "arm64")?;
            let amd = live_figures(&last, "amd64")?;
            (arm.0 > 0.0 && arm.1 > 0.0 && amd.0 > 0.0 && amd.1 > 0.0).then_some((arm, amd))
        });
        let Some((arm, amd)) = shown else {
            panic!("no live arm64 and amd64 rows within {SHOW_TIMEOUT:?}; last screen:\n{last}");
        };
        (arm, amd, last)
    }

    /// The master's exit status, once it has exited, and the screen it left: whether the
    /// pane is still on the alternate screen, and its text.
    fn wait_exit(&self) -> (i32, Exited) {
        let status_file = self.dir.path().join("master.status");
        let state = wait_for(EXIT_TIMEOUT, || {
            let status: i32 = std::fs::read_to_string(&status_file)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let out = self
                .tmux
                .cmd(&["display-message", "-p", "-t", SESSION, "#{alternate_on}"]);
            let alternate = String::from_utf8_lossy(&out.stdout).trim() == "1";
            Some((status, alternate))
        });
        let screen = self.screen();
        let (status, alternate) =
            state.unwrap_or_else(|| panic!("still running {EXIT_TIMEOUT:?} later:\n{screen}"));
        (status, Exited { alternate, screen })
    }
}

/// The pane after the master exited.
struct Exited {
    alternate: bool,
    screen: String,
}

/// The terminal was given back: off the alternate screen, the end-of-run lines printed on the
/// normal one, no dashboard left.
fn assert_given_back(after: &Exited, total: u64) {
    let screen = &after.screen;
    assert!(!after.alternate, "still on the alternate screen:\n{screen}");
    assert!(
        screen.contains(&format!("done: {total} requests")),
        "no end-of-run lines:\n{screen}"
    );
    assert!(
        !screen.contains("per arch and target"),
        "the dashboard is still there:\n{screen}"
    );
}

fn requests(v: &serde_json::Value) -> u64 {
    v["requests"].as_u64().unwrap_or(0)
}

#[test]
fn demo_in_tmux_shows_both_arches_live_and_obeys_plus_e_and_q() {
    let Some(demo) = Demo::start() else {
        return;
    };
    let (arm, amd, mut last) = demo.wait_live();
    eprintln!("live screen:\n{last}");
    // The header and keys are there, whole, at 80x24.
    for text in ["stage 1/1", "req/s", "p99", "load", "q stop", "? help"] {
        assert!(last.contains(text), "no `{text}` on screen:\n{last}");
    }

    // `+`: one step (a tenth of 4 users, at least 1) more; the worker really runs it.
    demo.send("+");
    let more = wait_for(KEY_TIMEOUT, || {
        last = demo.screen();
        last.contains("users 5/5 (+1)").then_some(())
    });
    assert!(more.is_some(), "+ did not bring 5 users running:\n{last}");

    // `e`: the summary so far, beside the summary path.
    demo.send("e");
    let partial = demo.dir.path().join("summary.partial.json");
    let exported = wait_for(KEY_TIMEOUT, || {
        let text = std::fs::read_to_string(&partial).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["totals"]["requests"].as_u64()
    });
    let exported = exported.unwrap_or_else(|| panic!("e wrote no {}", partial.display()));
    assert!(exported > 0);
    assert!(
        !demo.summary.exists(),
        "the final summary exists before the end"
    );

    demo.send("q");
    let asked = Instant::now();
    let (status, after) = demo.wait_exit();
    eprintln!("exited {:?} after q", asked.elapsed());
    assert_eq!(status, 0, "screen after q:\n{}", after.screen);

    let text = std::fs::read_to_string(&demo.summary).expect("the summary is written after q");
    common::schema::validate_summary(&text, "the demo's summary");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let total = requests(&json["totals"]);
    assert!(total > 0, "{text}");
    assert!(total >= exported, "final {total} < exported {exported}");
    // What the screen showed was counted: the final figures can only be larger.
    for (arch, (_, shown_total)) in [("arm64", arm), ("amd64", amd)] {
        let counted = requests(&json["by_arch"][arch]);
        assert!(
            counted as f64 >= shown_total,
            "{arch}: screen showed {shown_total}, summary has {counted}"
        );
    }
    // q stopped the run early: it did not run its course.
    assert!(
        json["duration_s"].as_f64().unwrap() < RUN_TIME_S as f64,
        "{text}"
    );
    assert_given_back(&after, total);
}

#[test]
fn sigterm_stops_gracefully_and_gives_the_terminal_back() {
    let Some(demo) = Demo::start() else {
        return;
    };
    demo.wait_live();
    let pid = std::fs::read_to_string(demo.dir.path().join("master.pid")).unwrap();
    let pid = pid.trim();
    let killed = Command::new("kill").args(["-TERM", pid]).status().unwrap();
    assert!(killed.success(), "kill -TERM {pid}");
    let (status, after) = demo.wait_exit();
    assert_eq!(status, 0, "screen after SIGTERM:\n{}", after.screen);
    let text = std::fs::read_to_string(&demo.summary).expect("the summary is written");
    common::schema::validate_summary(&text, "the demo's summary");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let total = requests(&json["totals"]);
    assert!(total > 0, "{text}");
    assert_given_back(&after, total);
}
