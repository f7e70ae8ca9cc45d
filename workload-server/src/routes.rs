//! What a request asks for: its [`Route`] from the path, and the `?dim=` / `?seed=` of a
//! `/runtime` request, checked before anything is allocated for it.

use http::Method;

/// Every path the server answers, plus one for all the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /runtime`
    Runtime,
    /// `GET /arm/runtime`
    ArmRuntime,
    /// `GET /amd/runtime`
    AmdRuntime,
    /// `GET /app` and `GET /app/...`: the splitter
    App,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// Anything else: 404
    NotFound,
}

impl Route {
    /// Every route, in the order of [`Route::index`].
    pub const ALL: [Route; 8] = [
        Route::Runtime,
        Route::ArmRuntime,
        Route::AmdRuntime,
        Route::App,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::NotFound,
    ];

    /// The route a path belongs to.
    pub fn of_path(path: &str) -> Route {
        match path {
            "/runtime" => Route::Runtime,
            "/arm/runtime" => Route::ArmRuntime,
            "/amd/runtime" => Route::AmdRuntime,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            p if p == APP
                || p.strip_prefix(APP)
                    .is_some_and(|rest| rest.starts_with('/')) =>
            {
                Route::App
            }
            _ => Route::NotFound,
        }
    }

    /// Position in [`Route::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `route` label in the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Route::Runtime => "/runtime",
            Route::ArmRuntime => "/arm/runtime",
            Route::AmdRuntime => "/amd/runtime",
            Route::App => "/app",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::NotFound => "other",
        }
    }

    /// Whether this route does the matrix multiply.
    pub fn computes(self) -> bool {
        matches!(self, Route::Runtime | Route::ArmRuntime | Route::AmdRuntime)
    }

    /// The methods this route answers (for `Allow` on a 405).
    pub fn allowed(self) -> &'static str {
        if self.computes() || self == Route::App {
            "GET"
        } else {
            "GET, HEAD"
        }
    }

    /// Whether `method` is one this route answers.
    pub fn allows(self, method: &Method) -> bool {
        match self {
            Route::NotFound => true,
            r if r.computes() || r == Route::App => method == Method::GET,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

const APP: &str = "/app";

/// Where the splitter sends an `/app...` request: the same rest of the path and query under
/// `/arm` or `/amd`.
pub fn split_location(path: &str, query: Option<&str>, to_arm: bool) -> String {
    let rest = path.strip_prefix(APP).unwrap_or(path);
    let prefix = if to_arm { "/arm" } else { "/amd" };
    let mut location =
        String::with_capacity(prefix.len() + rest.len() + 1 + query.map_or(0, str::len));
    location.push_str(prefix);
    location.push_str(rest);
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    location
}

/// What a `/runtime` request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeParams {
    /// Side of the matrices.
    pub dim: usize,
    /// Seed of the matrices, when the client chose one (reproducible answers).
    pub seed: Option<u64>,
}

/// A `/runtime` query the server refuses (400), with the reason sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("dim must be a whole number between 1 and {max}, got {value:?}")]
    DimNotANumber { value: String, max: usize },
    #[error("dim must be positive, got {value:?}")]
    DimNotPositive { value: String },
    #[error("dim {value} exceeds the maximum {max}")]
    DimTooLarge { value: String, max: usize },
    #[error(
        "seed must be a whole number between 0 and {}, got {value:?}",
        u64::MAX
    )]
    SeedNotANumber { value: String },
}

/// Longest piece of a client's value repeated in an error.
const ECHO_LIMIT: usize = 40;

fn echo(value: &str) -> String {
    value.chars().take(ECHO_LIMIT).collect()
}

/// Reads `dim` and `seed` from a query string (other parameters are ignored; the first of a
/// repeated one counts). Values are taken literally: `%`-escapes are not decoded, so an escaped
/// number is not a number.
pub fn runtime_params(
    query: Option<&str>,
    default_dim: usize,
    max_dim: usize,
) -> Result<RuntimeParams, QueryError> {
    let mut dim = None;
    let mut seed = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "dim" if dim.is_none() => dim = Some(parse_dim(value, max_dim)?),
            "seed" if seed.is_none() => {
                let parsed = value
                    .parse::<u64>()
                    .map_err(|_| QueryError::SeedNotANumber { value: echo(value) })?;
                seed = Some(parsed);
            }
            _ => {}
        }
    }
    Ok(RuntimeParams {
        dim: dim.unwrap_or(default_dim),
        seed,
    })
}

fn parse_dim(value: &str, max: usize) -> Result<usize, QueryError> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if value.strip_prefix('-').is_some_and(digits) {
        return Err(QueryError::DimNotPositive { value: echo(value) });
    }
    if !digits(value) {
        return Err(QueryError::DimNotANumber {
            value: echo(value),
            max,
        });
    }
    match value.parse::<usize>() {
        Ok(0) => Err(QueryError::DimNotPositive { value: echo(value) }),
        Ok(dim) if dim <= max => Ok(dim),
        // Too large for the limit, or even for a usize.
        _ => Err(QueryError::DimTooLarge {
            value: echo(value),
            max,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(Route::of_path("/runtime"), Route::Runtime);
        assert_eq!(Route::of_path("/arm/runtime"), Route::ArmRuntime);
        assert_eq!(Route::of_path("/amd/runtime"), Route::AmdRuntime);
        assert_eq!(Route::of_path("/app"), Route::App);
        assert_eq!(Route::of_path("/app/runtime"), Route::App);
        assert_eq!(Route::of_path("/application"), Route::NotFound);
        assert_eq!(Route::of_path("/runtime/"), Route::NotFound);
        assert_eq!(Route::of_path("/"), Route::NotFound);
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(route.index(), i);
        }
    }

    #[test]
    fn methods() {
        assert!(Route::Runtime.allows(&Method::GET));
        assert!(!Route::Runtime.allows(&Method::POST));
        assert!(!Route::Runtime.allows(&Method::HEAD));
        assert!(Route::Healthz.allows(&Method::HEAD));
        assert!(!Route::Metrics.allows(&Method::DELETE));
    }

    #[test]
    fn the_splitter_keeps_path_and_query() {
        assert_eq!(
            split_location("/app/runtime", Some("dim=5"), true),
            "/arm/runtime?dim=5"
        );
        assert_eq!(split_location("/app/runtime", None, false), "/amd/runtime");
        assert_eq!(split_location("/app", None, true), "/arm");
    }

    #[test]
    fn dims_and_seeds() {
        let p = |q| runtime_params(Some(q), 500, 2000);
        assert_eq!(
            p("dim=7&seed=9"),
            Ok(RuntimeParams {
                dim: 7,
                seed: Some(9)
            })
        );
        assert_eq!(runtime_params(None, 500, 2000).unwrap().dim, 500);
        assert_eq!(p("x=1&dim=2000").unwrap().dim, 2000);
        assert_eq!(p("dim=3&dim=abc").unwrap().dim, 3);
        assert!(matches!(
            p("dim=abc"),
            Err(QueryError::DimNotANumber { .. })
        ));
        assert!(matches!(p("dim="), Err(QueryError::DimNotANumber { .. })));
        assert!(matches!(
            p("dim=1.5"),
            Err(QueryError::DimNotANumber { .. })
        ));
        assert!(matches!(
            p("dim=%31"),
            Err(QueryError::DimNotANumber { .. })
        ));
        assert!(matches!(
            p("dim=-5"),
            Err(QueryError::DimNotPositive { .. })
        ));
        assert!(matches!(p("dim=0"), Err(QueryError::DimNotPositive { .. })));
        assert!(matches!(p("dim=2001"), Err(QueryError::DimTooLarge { .. })));
        assert!(matches!(
            p("dim=99999999999999999999999999"),
            Err(QueryError::DimTooLarge { .. })
        ));
        assert!(matches!(
            p("seed=-1"),
            Err(QueryError::SeedNotANumber { .. })
        ));
        let long = format!("dim={}", "x".repeat(10_000));
        assert!(p(&long).unwrap_err().to_string().len() < 200);
    }
}
