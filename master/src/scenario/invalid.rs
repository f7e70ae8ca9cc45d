//! What a check of the scenario says is wrong: the key path and what was expected.

/// A key path (`target[1].url`) and what is wrong with its value.
pub type Invalid = (String, String);
