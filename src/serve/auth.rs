//! Bearer tokens. The token file holds one client a line, `NAME SCOPES
//! SHA256-HEX-OF-THE-TOKEN` (`#` starts a comment; scopes `render`, `jobs`,
//! `admin`, comma-separated), so the server never holds a token itself,
//! only its hash. The file is read again within a second of a change; a
//! file that cannot be read then lets nobody in until it is fixed (a
//! revoked line must never stay valid because another line is broken).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use super::error::ApiError;
use super::Shared;
use letterpress::error::{Error, Result};
use letterpress::util::digest::sha256_hex;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Ask for documents on demand.
    Render,
    /// Submit, read and cancel its own batch jobs.
    Jobs,
    /// Read the metrics and every client's jobs.
    Admin,
}

impl Scope {
    fn parse(s: &str) -> Option<Scope> {
        match s {
            "render" => Some(Scope::Render),
            "jobs" => Some(Scope::Jobs),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Render => "render",
            Scope::Jobs => "jobs",
            Scope::Admin => "admin",
        }
    }
}

/// A client the token file names.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its name.
    pub name: String,
    scopes: Vec<Scope>,
}

impl Client {
    /// Refuses (403) unless the client has `scope`.
    pub fn needs(&self, scope: Scope) -> std::result::Result<(), ApiError> {
        match self.scopes.contains(&scope) {
            true => Ok(()),
            false => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the token `{}` does not have the scope `{}`",
                    self.name,
                    scope.name()
                ),
            )),
        }
    }

    /// Whether it may see every client's jobs.
    pub fn admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }
}

/// Parses a token file: clients by the SHA-256 of their token.
pub fn parse(text: &str, path: &Path) -> Result<HashMap<String, Client>> {
    let mut clients = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            Error::Usage(format!(
                "{}:{}: {why} (a line is `NAME SCOPES SHA256`)",
                path.display(),
                n + 1
            ))
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, scopes, hash] = words[..] else {
            return Err(bad("not three words"));
        };
        let scopes = scopes
            .split(',')
            .map(|s| {
                Scope::parse(s)
                    .ok_or_else(|| bad(&format!("`{s}` is not a scope (render, jobs, admin)")))
            })
            .collect::<Result<Vec<_>>>()?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the third word is not a SHA-256 in hex"));
        }
        let client = Client {
            name: name.to_owned(),
            scopes,
        };
        if clients.insert(hash.to_ascii_lowercase(), client).is_some() {
            return Err(bad("a token listed twice"));
        }
    }
    Ok(clients)
}

/// A new token and its line for the token file.
pub fn new_token(name: &str, scopes: &str) -> Result<(String, String)> {
    let line = |hash: &str| format!("{name} {scopes} {hash}");
    parse(&line(&"0".repeat(64)), Path::new("the new line"))?;
    let token = format!("lp_{}", letterpress::util::digest::random_hex());
    Ok((line(&sha256_hex(token.as_bytes())), token))
}

/// The token file, read again when it changes.
pub struct Tokens {
    path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    clients: Option<HashMap<String, Client>>,
    stamp: Option<(SystemTime, u64)>,
    looked: Instant,
}

impl Tokens {
    /// Reads the token file (an error if it cannot be read now).
    pub fn load(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let clients = parse(&text, path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            state: Mutex::new(Loaded {
                clients: Some(clients),
                stamp: stamp(path),
                looked: Instant::now(),
            }),
        })
    }

    /// The client whose token this is.
    fn client(&self, token: &str) -> Option<Client> {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.looked.elapsed() >= Duration::from_secs(1) {
            s.looked = Instant::now();
            let now = stamp(&self.path);
            if now != s.stamp {
                s.stamp = now;
                s.clients = std::fs::read_to_string(&self.path)
                    .map_err(|e| Error::io(&self.path, e))
                    .and_then(|t| parse(&t, &self.path))
                    .map_err(|e| eprintln!("letterpress serve: the token file cannot be used, nobody is let in: {e}"))
                    .ok();
            }
        }
        s.clients
            .as_ref()?
            .get(&sha256_hex(token.as_bytes()))
            .cloned()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl FromRequestParts<Shared> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Shared,
    ) -> std::result::Result<Client, ApiError> {
        let unauthorized = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("no bearer token (Authorization: Bearer TOKEN)"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer TOKEN`"))?;
        app.tokens
            .client(token.trim())
            .ok_or_else(|| unauthorized("the token is not valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_is_read_and_its_mistakes_named() {
        let (line, token) = new_token("portal", "render,jobs").unwrap();
        let text = format!("# clients\n\n{line}  # the portal\n");
        let clients = parse(&text, Path::new("t")).unwrap();
        let c = &clients[&sha256_hex(token.as_bytes())];
        assert_eq!(c.name, "portal");
        assert!(c.needs(Scope::Jobs).is_ok() && c.needs(Scope::Admin).is_err());
        for (bad, why) in [
            ("a render", "not three words"),
            ("a print 00", "not a scope"),
            ("a render xyz", "not a SHA-256"),
            (&format!("{line}\n{line}"), "listed twice"),
        ] {
            let err = parse(bad, Path::new("t")).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(new_token("x", "render,everything").is_err());
    }
}
