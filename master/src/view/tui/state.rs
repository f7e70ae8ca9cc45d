//! What the live view remembers between frames (the view shown, the help, whether a stop was
//! asked for, recent notices) and what each key action does to it.

use std::collections::VecDeque;
use std::time::Duration;

use super::super::command::Command;
use super::super::snapshot::Snapshot;
use crate::outcome::SeriesPoint;

use super::input::Action;

/// Notices kept for the events list.
const LOG_LINES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    #[default]
    Dashboard,
    Workers,
    /// Connect, TLS and TTFB p99 per arch and the failures by reason (key `p`).
    Phases,
}

impl Tab {
    pub const ALL: [Tab; 3] = [Tab::Dashboard, Tab::Workers, Tab::Phases];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Dashboard => "dashboard",
            Tab::Workers => "workers",
            Tab::Phases => "phases",
        }
    }

    fn next(self) -> Tab {
        match self {
            Tab::Dashboard => Tab::Workers,
            // Tab keeps to the two views it always had; `p` opens this one.
            Tab::Workers | Tab::Phases => Tab::Dashboard,
        }
    }
}

/// What the terminal loop must do after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Only the screen changes.
    Redraw,
    /// Ask for a graceful stop.
    Stop,
    /// A second stop: restore the terminal and leave now.
    Quit,
    /// Send this to the controller.
    Send(Command),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UiState {
    pub tab: Tab,
    pub help: bool,
    /// A stop was asked for (a key or a signal); the run is winding down.
    pub stopping: bool,
    /// Recent notices with the run time they arrived at, oldest first.
    pub log: VecDeque<(Duration, String)>,
    /// The run's series so far, as the snapshots brought it.
    pub series: Vec<SeriesPoint>,
}

impl UiState {
    pub fn apply(&mut self, action: Action) -> Effect {
        match action {
            Action::Stop if self.stopping => Effect::Quit,
            Action::Stop => {
                // The footer says so while it lasts.
                self.stopping = true;
                Effect::Stop
            }
            // Once stopping, the controller no longer takes commands.
            Action::MoreUsers | Action::FewerUsers | Action::Export if self.stopping => {
                Effect::Redraw
            }
            Action::MoreUsers => Effect::Send(Command::ShiftUsers(1)),
            Action::FewerUsers => Effect::Send(Command::ShiftUsers(-1)),
            Action::Export => Effect::Send(Command::Export),
            Action::NextView => {
                self.tab = self.tab.next();
                Effect::Redraw
            }
            Action::PhasesView => {
                self.tab = match self.tab {
                    Tab::Phases => Tab::Dashboard,
                    _ => Tab::Phases,
                };
                Effect::Redraw
            }
            Action::ToggleHelp => {
                self.help = !self.help;
                Effect::Redraw
            }
            Action::Dismiss => {
                self.help = false;
                Effect::Redraw
            }
        }
    }

    /// Keeps the snapshot's new series points for the charts and its notices for the events
    /// list.
    pub fn absorb(&mut self, snapshot: &Snapshot) {
        self.series.extend(snapshot.new_points.iter().cloned());
        for n in &snapshot.notices {
            self.log.push_back((snapshot.elapsed, n.clone()));
        }
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_keys_become_commands() {
        let mut s = UiState::default();
        assert_eq!(
            s.apply(Action::MoreUsers),
            Effect::Send(Command::ShiftUsers(1))
        );
        assert_eq!(
            s.apply(Action::FewerUsers),
            Effect::Send(Command::ShiftUsers(-1))
        );
        assert_eq!(s.apply(Action::Export), Effect::Send(Command::Export));
    }

    #[test]
    fn first_stop_is_graceful_second_quits() {
        let mut s = UiState::default();
        assert_eq!(s.apply(Action::Stop), Effect::Stop);
        assert!(s.stopping);
        // Commands no longer go out while stopping.
        assert_eq!(s.apply(Action::MoreUsers), Effect::Redraw);
        assert_eq!(s.apply(Action::Export), Effect::Redraw);
        assert_eq!(s.apply(Action::Stop), Effect::Quit);
    }

    #[test]
    fn tab_cycles_views_and_help_toggles() {
        let mut s = UiState::default();
        assert_eq!(s.tab, Tab::Dashboard);
        s.apply(Action::NextView);
        assert_eq!(s.tab, Tab::Workers);
        s.apply(Action::NextView);
        assert_eq!(s.tab, Tab::Dashboard);
        s.apply(Action::ToggleHelp);
        assert!(s.help);
        s.apply(Action::ToggleHelp);
        assert!(!s.help);
        s.apply(Action::ToggleHelp);
        s.apply(Action::Dismiss);
        assert!(!s.help);
    }

    #[test]
    fn notices_are_kept_with_their_time_and_bounded() {
        let mut s = UiState::default();
        let snap = Snapshot {
            elapsed: Duration::from_secs(7),
            notices: vec!["worker w1 joined".into()],
            ..Snapshot::default()
        };
        s.absorb(&snap);
        assert_eq!(
            s.log.back(),
            Some(&(Duration::from_secs(7), "worker w1 joined".to_owned()))
        );
        for _ in 0..(LOG_LINES + 10) {
            s.absorb(&snap);
        }
        assert_eq!(s.log.len(), LOG_LINES);
    }
}
