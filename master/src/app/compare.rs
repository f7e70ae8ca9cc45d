//! `stampede-master compare BASE.json CANDIDATE.json`: the two summaries read, compared
//! (`outcome::diff`), printed as a table, Markdown or JSON; exit 1 when a `--fail-on` rule
//! finds a significant regression, 2 on bad input.

use anyhow::anyhow;

use super::cli::CompareArgs;
use super::exit::Failure;
use crate::outcome::diff::{self, Diff};
use crate::outcome::rule::Rule;
use crate::report;

pub fn compare(args: &CompareArgs) -> Result<(), Failure> {
    let rules = args
        .fail_on
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::bad_input(anyhow!(e)))?;
    let map = diff::parse_map(&args.map).map_err(Failure::bad_input)?;
    let base = report::read_summary(&args.base).map_err(Failure::bad_input)?;
    let candidate = report::read_summary(&args.candidate).map_err(Failure::bad_input)?;
    let d: Diff = diff::diff(&base, &candidate, &map, &rules).map_err(|e| {
        Failure::bad_input(anyhow!(
            "{} vs {}: {e}",
            args.base.display(),
            args.candidate.display()
        ))
    })?;
    if args.json {
        let json = serde_json::to_string_pretty(&d)
            .map_err(|e| Failure::not_carried_out(anyhow!("cannot write the JSON: {e}")))?;
        println!("{json}");
    } else if args.markdown {
        print!("{}", report::diff::markdown(&d));
    } else {
        print!("{}", report::diff::text(&d));
    }
    let fired: Vec<String> = d
        .fired()
        .iter()
        .map(|r| format!("{} ({})", r.rule, r.detail.join("; ")))
        .collect();
    if fired.is_empty() {
        Ok(())
    } else {
        Err(Failure::Regressions(fired))
    }
}
