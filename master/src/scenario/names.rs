//! Reading a value from a fixed set of names, with an error that lists them.

/// Reads one of a fixed set of names; the error lists them (serde's own enum errors, through
/// `config`, do not).
pub(super) fn one_of<T: Copy>(value: &str, names: &[(&str, T)]) -> Result<T, String> {
    names
        .iter()
        .find(|(name, _)| *name == value)
        .map(|&(_, v)| v)
        .ok_or_else(|| {
            let names: Vec<String> = names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            format!("\"{value}\": expected one of {}", names.join(", "))
        })
}
