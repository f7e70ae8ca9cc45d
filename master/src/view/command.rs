//! What a live view may ask of the running controller. Stopping is not here: views stop the
//! run through the same cancellation token as Ctrl-C and SIGTERM.

/// One request from a view to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Move the plan's goal by this many steps of users (negative: fewer).
    ShiftUsers(i32),
    /// Write the summary of the run so far next to the summary path (`*.partial.json`).
    Export,
}
