//! The live view in a real terminal: `stampede-master demo` runs in a detached tmux session of
//! 80x24; the screen must show arm64 and amd64 rows with live numbers, `q` must stop the run
//! gracefully (exit 0, the summary written), and the terminal must be given back (the
//! end-of-run lines are on the normal screen afterwards). Skips, saying why, without tmux.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long the demo may take to show both arches (it compiles nothing; this is start-up,
/// the ramp and the first report intervals on a busy machine).
const SHOW_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after `q` the run may take to finish (stop timeout 10s + report grace 5s + exit).
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(500);

/// A private tmux server (its own socket), killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
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

fn quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn demo_in_tmux_shows_both_arches_live_and_q_exits_0_with_a_summary() {
    if !tmux_available() {
        eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let exit_file = dir.path().join("exit");
    let bin = Path::new(env!("CARGO_BIN_EXE_stampede-master"));
    let script = format!(
        "cd {dir} && {bin} demo --run-time 30s --users 4 --summary {summary}; echo EXIT=$? > {exit}",
        dir = quote(dir.path()),
        bin = quote(bin),
        summary = quote(&summary),
        exit = quote(&exit_file),
    );
    let tmux = Tmux {
        socket: format!("stampede-test-{}", std::process::id()),
    };
    let session = "demo";
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        session,
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
        session,
        "remain-on-exit",
        "on",
    ]);
    assert!(
        started.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&started.stderr)
    );

    let mut last = String::new();
    let shown = wait_for(SHOW_TIMEOUT, || {
        last = tmux.screen(session);
        let arm = live_figures(&last, "arm64")?;
        let amd = live_figures(&last, "amd64")?;
        (arm.0 > 0.0 && arm.1 > 0.0 && amd.0 > 0.0 && amd.1 > 0.0).then_some((arm, amd))
    });
    let Some((arm, amd)) = shown else {
        panic!("no live arm64 and amd64 rows within {SHOW_TIMEOUT:?}; last screen:\n{last}");
    };
    eprintln!("live screen:\n{last}");
    // The header and keys are there, whole, at 80x24.
    for text in ["stage 1/1", "req/s", "p99", "load", "q stop", "? help"] {
        assert!(last.contains(text), "no `{text}` on screen:\n{last}");
    }

    let sent = tmux.cmd(&["send-keys", "-t", session, "q"]);
    assert!(sent.status.success());
    let exit = wait_for(EXIT_TIMEOUT, || std::fs::read_to_string(&exit_file).ok());
    let after = tmux.screen(session);
    let exit = exit.unwrap_or_else(|| panic!("no exit within {EXIT_TIMEOUT:?} of q:\n{after}"));
    assert_eq!(exit.trim(), "EXIT=0", "screen after q:\n{after}");

    let text = std::fs::read_to_string(&summary).expect("the summary is written after q");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let requests = |v: &serde_json::Value| v["requests"].as_u64().unwrap_or(0);
    let total = requests(&json["totals"]);
    assert!(total > 0, "{text}");
    // What the screen showed was counted: the final figures can only be larger.
    for (arch, (_, shown_total)) in [("arm64", arm), ("amd64", amd)] {
        let counted = requests(&json["by_arch"][arch]);
        assert!(
            counted as f64 >= shown_total,
            "{arch}: screen showed {shown_total}, summary has {counted}"
        );
    }
    // q stopped the run early: it did not run its 30 s.
    assert!(json["duration_s"].as_f64().unwrap() < 30.0, "{text}");
    // The terminal was given back: the normal screen holds the end-of-run lines.
    assert!(
        after.contains(&format!("done: {total} requests")),
        "screen after exit:\n{after}"
    );
}
