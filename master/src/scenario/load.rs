//! Loading a scenario: the TOML file, then `STAMPEDE__…` environment variables, then
//! `--set key=value` overrides, layered with the `config` crate.

use std::path::{Path, PathBuf};

use config::{Config, ConfigError, Environment, File, FileFormat};

use super::validate::validate;
use super::{Scenario, ScenarioFile};

/// Prefix of environment overrides: `STAMPEDE__LOAD__USERS=200` sets `load.users`.
const ENV_PREFIX: &str = "STAMPEDE";
const ENV_SEPARATOR: &str = "__";

/// Why a scenario could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: TOML syntax error: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{}: `{key}`: {message}", at(path, *position))]
    Value {
        path: PathBuf,
        /// Line and column of the key in the file, when it is there (not from a flag).
        position: Option<(usize, usize)>,
        key: String,
        message: String,
    },
    #[error("bad --set `{0}`: expected KEY=VALUE, e.g. load.users=200")]
    BadOverride(String),
}

/// `path` or `path:line:column`.
fn at(path: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

/// Reads, layers, deserializes and validates a scenario file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text, overrides)
}

/// Like [`load`], from text already read; `path` only names the source in errors.
pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    check_syntax(path, text)?;
    let mut builder = Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .try_parsing(true),
        );
    for raw in overrides {
        let (key, value) = split_override(raw)?;
        builder = builder
            .set_override(key, value)
            .map_err(|e| ScenarioError::Invalid {
                path: path.to_owned(),
                message: format!("--set {raw}: {e}"),
            })?;
    }
    let config = builder.build().map_err(|e| ScenarioError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let file: ScenarioFile = serde_path_to_error::deserialize(config.cache).map_err(|e| {
        let (key, message) = describe(&e.path().to_string(), e.inner());
        ScenarioError::Value {
            path: path.to_owned(),
            position: locate(text, &key),
            key,
            message,
        }
    })?;
    let at_key = |(key, message): (String, String)| ScenarioError::Value {
        path: path.to_owned(),
        position: locate(text, &key),
        key,
        message,
    };
    let mut file = file;
    // The files a scenario names (TLS certificates) are read now, next to it: a missing one
    // stops the run before any worker is asked.
    let base = path.parent().unwrap_or(Path::new("."));
    validate(&file)
        .and_then(|()| super::target::read_files(&mut file, base))
        .map_err(at_key)?;
    Scenario::parse(file).map_err(at_key)
}

/// Parses once with `toml` alone, because it reports line and column and `config` does not.
fn check_syntax(path: &Path, text: &str) -> Result<(), ScenarioError> {
    let Err(e) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let (line, column) = e
        .span()
        .map(|span| line_column(text, span.start))
        .unwrap_or((1, 1));
    Err(ScenarioError::Syntax {
        path: path.to_owned(),
        line,
        column,
        message: e.message().to_owned(),
    })
}

/// Where key path `key` (`load.users`, `target[1].url`, `thresholds."p99"`) is written in the
/// file: the key itself, else its nearest enclosing table or array entry. `None` when nothing
/// of it is in the file (a value from the environment or `--set`, or a missing top-level key).
fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let root = toml::de::DeValue::Table(root.into_inner());
    let mut current = &root;
    let mut found = None;
    for segment in key_segments(key) {
        let next = match segment {
            Segment::Key(k) => current.get(k),
            Segment::Index(i) => current.get(i),
        };
        let Some(next) = next else { break };
        found = Some(next.span().start);
        current = next.get_ref();
    }
    found.map(|offset| line_column(text, offset))
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2]."c.d"` into `a`, `b`, `2`, `c.d`.
fn key_segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        rest = rest.trim_start_matches('.');
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push(Segment::Key(&quoted[..end]));
            rest = quoted.get(end + 1..).unwrap_or("");
        } else if let Some(index) = rest.strip_prefix('[') {
            let end = index.find(']').unwrap_or(index.len());
            if let Ok(i) = index[..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = index.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end > 0 {
                out.push(Segment::Key(&rest[..end]));
            }
            rest = &rest[end..];
        }
    }
    out
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn split_override(raw: &str) -> Result<(&str, &str), ScenarioError> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value.trim())),
        _ => Err(ScenarioError::BadOverride(raw.to_owned())),
    }
}

/// The key path and what was wrong, from a deserialization error at `at` (serde_path_to_error's
/// path: `load.wait`, `target[1].url`, or `.` for the top level).
fn describe(at: &str, e: &ConfigError) -> (String, String) {
    let join = |field: &str| match at {
        "." | "" => field.to_owned(),
        _ => format!("{at}.{field}"),
    };
    match e {
        ConfigError::NotFound(field) => (join(field), "required, but missing".to_owned()),
        ConfigError::Type {
            unexpected,
            expected,
            origin,
            ..
        } => {
            let from = origin
                .as_ref()
                .map(|o| format!(" (from {o})"))
                .unwrap_or_default();
            (
                at.to_owned(),
                format!("expected {expected}, found {unexpected}{from}"),
            )
        }
        ConfigError::At { error, .. } => describe(at, error),
        ConfigError::Message(m) => match unknown_field(m) {
            // The path already ends with the unknown key.
            Some((field, rest)) if at == field || at.ends_with(&format!(".{field}")) => {
                (at.to_owned(), format!("unknown key{rest}"))
            }
            Some((field, rest)) => (join(field), format!("unknown key{rest}")),
            None if m.ends_with("expected a duration") => (
                at.to_owned(),
                format!("{m} such as \"250ms\", \"5s\" or \"1m30s\""),
            ),
            None => (at.to_owned(), m.clone()),
        },
        other => (at.to_owned(), other.to_string()),
    }
}

/// Splits serde's "unknown field `x`, expected one of ..." into the field and the rest.
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    Some((field, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
run_time = "10s"
[[target]]
name = "arm"
url = "http://127.0.0.1:1/arm"
arch = "arm64"
[[request]]
name = "r"
path = "/runtime"
[load]
users = 4
"#;

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = parse(Path::new("m.toml"), MINIMAL, &[]).unwrap().file;
        assert_eq!(s.name, "t");
        assert_eq!(s.arch_header, "x-arch");
        assert_eq!(s.targets[0].weight, 1);
        assert_eq!(s.requests[0].method, "GET");
        assert_eq!(s.load.users, Some(4));
    }

    #[test]
    fn set_overrides_win() {
        let s = parse(
            Path::new("m.toml"),
            MINIMAL,
            &["load.users=9".into(), "run_time=1m".into()],
        )
        .unwrap()
        .file;
        assert_eq!(s.load.users, Some(9));
        assert_eq!(s.run_time, Some(std::time::Duration::from_secs(60)));
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let text = "name = \"t\"\nrun_time = = 3\n";
        let e = parse(Path::new("bad.toml"), text, &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("bad.toml:2:"), "{msg}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let text = MINIMAL.replace("users = 4", "users = 4\nuserz = 5");
        let msg = parse(Path::new("u.toml"), &text, &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("userz"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = MINIMAL.replace("users = 4", "users = \"many\"");
        let msg = parse(Path::new("w.toml"), &text, &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("load.users"), "{msg}");
    }

    #[test]
    fn value_errors_point_at_the_line_of_the_key() {
        let text = MINIMAL.replace("users = 4", "users = 0");
        let msg = parse(Path::new("z.toml"), &text, &[])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("z.toml:12:9: `load.users`"), "{msg}");
        let msg = parse(Path::new("z.toml"), MINIMAL, &["load.users=0".into()])
            .unwrap_err()
            .to_string();
        // The value came from a flag, but the key is in the file: its line still helps.
        assert!(msg.starts_with("z.toml:12:9: `load.users`"), "{msg}");
        let text = MINIMAL.replace("url = \"http://127.0.0.1:1/arm\"", "url = \"ftp://x\"");
        let msg = parse(Path::new("z.toml"), &text, &[])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("z.toml:6:7: `target[0].url`"), "{msg}");
    }

    #[test]
    fn key_paths_split_into_segments() {
        let names = |k: &str| -> Vec<String> {
            key_segments(k)
                .into_iter()
                .map(|s| match s {
                    Segment::Key(k) => k.to_owned(),
                    Segment::Index(i) => format!("#{i}"),
                })
                .collect()
        };
        assert_eq!(names("target[1].url"), ["target", "#1", "url"]);
        assert_eq!(
            names("thresholds.\"arch:a/p99\""),
            ["thresholds", "arch:a/p99"]
        );
        assert_eq!(names("load.wait.min"), ["load", "wait", "min"]);
    }

    #[test]
    fn bad_override_is_rejected() {
        let e = parse(Path::new("m.toml"), MINIMAL, &["nonsense".into()]).unwrap_err();
        assert!(matches!(e, ScenarioError::BadOverride(_)));
    }
}
