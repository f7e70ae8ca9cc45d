//! Who may join: a shared token is required by default. A master that only runs in-process
//! workers makes one up; one that expects remote workers must be given one, or be told
//! `--insecure` (which it then says loudly).

use std::fmt;

/// How workers are admitted.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Workers present `authorization: Bearer TOKEN`, compared in constant time.
    Token(String),
    /// Anyone who can reach the gRPC port may join.
    Insecure,
}

impl fmt::Debug for Auth {
    // The token must never reach a log line, even through a stray `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Insecure => f.write_str("Insecure"),
        }
    }
}

impl Auth {
    /// The token workers must present, if any.
    pub fn token(&self) -> Option<&str> {
        match self {
            Auth::Token(t) => Some(t),
            Auth::Insecure => None,
        }
    }
}

/// Why no admission rule could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(
        "remote workers need a shared token: give --token T (or STAMPEDE_TOKEN), or --insecure to let any process that reaches the gRPC port join"
    )]
    TokenRequired,
    #[error("the token is empty")]
    EmptyToken,
    #[error("the token must be visible ASCII without spaces (it travels as an HTTP header)")]
    BadToken,
}

/// Chooses how workers are admitted: the given token; none with `insecure`; a fresh random
/// token when only in-process workers (who are handed it) will join.
pub fn resolve(
    token: Option<&str>,
    insecure: bool,
    remote_workers: usize,
) -> Result<Auth, AuthError> {
    if insecure {
        return Ok(Auth::Insecure);
    }
    match token {
        Some("") => Err(AuthError::EmptyToken),
        Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => Err(AuthError::BadToken),
        Some(t) => Ok(Auth::Token(t.to_owned())),
        None if remote_workers > 0 => Err(AuthError::TokenRequired),
        None => Ok(Auth::Token(generate_token())),
    }
}

/// 256 random bits from the thread's CSPRNG, hex-encoded.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The warning an insecure master prints, naming what is exposed.
pub fn insecure_warning(addr: &str) -> String {
    format!(
        "INSECURE: authentication is disabled (--insecure). Any process that can reach {addr} can join as a worker, receive the scenario (URLs, headers, bodies) and send load where it points. Use --token in any shared network."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_required_for_remote_workers() {
        assert_eq!(resolve(None, false, 2), Err(AuthError::TokenRequired));
        assert_eq!(
            resolve(Some("t0k"), false, 2),
            Ok(Auth::Token("t0k".into()))
        );
        assert_eq!(resolve(None, true, 2), Ok(Auth::Insecure));
        assert_eq!(resolve(Some(""), false, 0), Err(AuthError::EmptyToken));
        assert_eq!(resolve(Some("a b"), false, 0), Err(AuthError::BadToken));
    }

    #[test]
    fn local_only_runs_get_a_fresh_random_token() {
        let Ok(Auth::Token(a)) = resolve(None, false, 0) else {
            panic!("a generated token");
        };
        let Ok(Auth::Token(b)) = resolve(None, false, 0) else {
            panic!("a generated token");
        };
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let text = format!("{:?}", Auth::Token("hunter2".into()));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
