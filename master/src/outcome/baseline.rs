//! Which arch every other is compared against: amd64 when the run has it (the incumbent in the
//! studies), else the first by name. Written once; the summary's comparison, the capacity
//! comparison and the live views all ask here.

/// The arch other arches are compared against, when present.
pub const PREFERRED_BASELINE: &str = "amd64";

/// The baseline among `arches` (in name order): amd64 if present, else the first.
pub fn baseline<'a>(mut arches: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    arches
        .clone()
        .find(|a| *a == PREFERRED_BASELINE)
        .or_else(|| arches.next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd64_when_present_else_the_first() {
        let arches = ["arm64", "amd64", "riscv64"];
        assert_eq!(baseline(arches.iter().copied()), Some("amd64"));
        assert_eq!(baseline(["arm64", "riscv64"].into_iter()), Some("arm64"));
        assert_eq!(baseline(std::iter::empty()), None);
    }
}
