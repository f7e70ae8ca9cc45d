//! Keys to actions, with no terminal involved (so it is tested as a plain function).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Graceful stop; a second one quits at once.
    Stop,
    MoreUsers,
    FewerUsers,
    Export,
    NextView,
    /// `p`: the phases view, or back to the dashboard.
    PhasesView,
    ToggleHelp,
    /// Esc: closes the help.
    Dismiss,
}

/// The action of a key event, if it has one. Ctrl-C arrives as a key in raw mode and means
/// `q`; key releases and repeats of other kinds are ignored.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Action::Stop);
    }
    match key.code {
        KeyCode::Char('q' | 'Q') => Some(Action::Stop),
        KeyCode::Char('+' | '=') => Some(Action::MoreUsers),
        KeyCode::Char('-' | '_') => Some(Action::FewerUsers),
        KeyCode::Char('e' | 'E') => Some(Action::Export),
        KeyCode::Tab | KeyCode::BackTab => Some(Action::NextView),
        KeyCode::Char('p' | 'P') => Some(Action::PhasesView),
        KeyCode::Char('?' | 'h') => Some(Action::ToggleHelp),
        KeyCode::Esc => Some(Action::Dismiss),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        let cases = [
            (KeyCode::Char('q'), Some(Action::Stop)),
            (KeyCode::Char('+'), Some(Action::MoreUsers)),
            // `=` is `+` without shift on most layouts.
            (KeyCode::Char('='), Some(Action::MoreUsers)),
            (KeyCode::Char('-'), Some(Action::FewerUsers)),
            (KeyCode::Char('e'), Some(Action::Export)),
            (KeyCode::Tab, Some(Action::NextView)),
            (KeyCode::BackTab, Some(Action::NextView)),
            (KeyCode::Char('?'), Some(Action::ToggleHelp)),
            (KeyCode::Esc, Some(Action::Dismiss)),
            (KeyCode::Char('x'), None),
            (KeyCode::Enter, None),
        ];
        for (code, want) in cases {
            assert_eq!(action_for(key(code)), want, "{code:?}");
        }
    }

    #[test]
    fn ctrl_c_is_q_and_other_control_keys_do_nothing() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(action_for(ctrl('c')), Some(Action::Stop));
        assert_eq!(action_for(ctrl('e')), None);
        assert_eq!(action_for(ctrl('q')), None);
    }

    #[test]
    fn releases_are_ignored() {
        let mut k = key(KeyCode::Char('q'));
        k.kind = KeyEventKind::Release;
        assert_eq!(action_for(k), None);
    }
}
