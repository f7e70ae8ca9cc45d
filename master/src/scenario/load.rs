//! Loading a scenario: the TOML file, then `STAMPEDE__…` environment variables, then
//! `--set key=value` overrides, layered with the `config` crate.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};

use super::Scenario;
use super::validate::validate;

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
    #[error("{path}: `{key}`: {message}")]
    Value {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("bad --set `{0}`: expected KEY=VALUE, e.g. load.users=200")]
    BadOverride(String),
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
    let scenario: Scenario = builder
        .build()
        .and_then(Config::try_deserialize)
        .map_err(|e| ScenarioError::Invalid {
            path: path.to_owned(),
            message: describe_config_error(&e),
        })?;
    validate(&scenario).map_err(|(key, message)| ScenarioError::Value {
        path: path.to_owned(),
        key,
        message,
    })?;
    Ok(scenario)
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

/// `config`'s messages already carry the key path for type errors; keep them, minus noise.
fn describe_config_error(e: &config::ConfigError) -> String {
    e.to_string()
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
        let s = parse(Path::new("m.toml"), MINIMAL, &[]).unwrap();
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
        .unwrap();
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
    fn bad_override_is_rejected() {
        let e = parse(Path::new("m.toml"), MINIMAL, &["nonsense".into()]).unwrap_err();
        assert!(matches!(e, ScenarioError::BadOverride(_)));
    }
}
