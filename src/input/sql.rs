//! Records straight from PostgreSQL: `--data postgresql://USER@HOST/DB`
//! with `--query SQL` (or `--query-file FILE`).
//!
//! Decisions:
//! - One connection and one transaction for the whole command, `REPEATABLE
//!   READ READ ONLY`: counting the rows before the run and reading them for
//!   it see the same point in time, whatever is written meanwhile.
//! - Rows are read through a server-side cursor, 1,000 at a time, so memory
//!   does not grow with the result.
//! - Every value arrives as text, as in a CSV file, and is converted to the
//!   schema's types: `true`/`false` for booleans, ISO dates. A column named
//!   `address.city` nests as a dotted CSV header does; `json` and `jsonb`
//!   columns become objects and lists; NULL is no value. Array columns are
//!   refused (build a list with `json_agg` or `to_jsonb`), as are two
//!   columns of one name.
//! - The password comes from `PGPASSWORD` or the password file
//!   (`PGPASSFILE`, else `~/.pgpass`, which must not be readable by group or
//!   others, as libpq has it); one written in the URL is refused, as it would
//!   be seen in the process list, the shell's history and the manifest.
//! - `line` is the row's number in the result, from 1. The digest of the
//!   rows (each row as canonical JSON and a line end) stands for the file's
//!   SHA-256 in the manifest.
//! - TLS as libpq asks for it in the URL (`sslmode=disable`, `prefer`, the
//!   default, `require`, `verify-ca`, `verify-full`), with rustls; the
//!   server's certificate is always verified, chain and host name, against
//!   `sslrootcert=FILE` (PEM), else `~/.postgresql/root.crt` as libpq has
//!   it, else the public roots (webpki-roots): a connection that is
//!   encrypted but to anybody is not one a bank's data should take.

use std::sync::{Arc, Mutex};

use postgres::types::Type;
use postgres::{Client, Config, SimpleQueryMessage};
use serde_json::{Map, Value};

use super::RawRecord;
use crate::error::{Error, Result};

/// Rows fetched from the cursor at a time.
const FETCH: usize = 1000;

/// Whether `data` names a PostgreSQL database rather than a file.
pub fn is_url(data: &str) -> bool {
    data.starts_with("postgresql://") || data.starts_with("postgres://")
}

/// How a column's text becomes a value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Bool,
    Json,
}

/// A database, a query, and the open transaction they are read in.
pub struct SqlSource {
    /// The URL, without a password.
    pub url: String,
    /// The URL as the driver reads it (without libpq's TLS options it
    /// does not know), and the CA file those named.
    config: Config,
    root_cert: Option<std::path::PathBuf>,
    /// The query as given.
    pub query: String,
    session: Mutex<Option<Session>>,
}

impl std::fmt::Debug for SqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSource").field("url", &self.url).finish()
    }
}

struct Session {
    client: Client,
    columns: Vec<(String, Kind)>,
    cursors: usize,
}

impl SqlSource {
    /// Describes the source; nothing is connected before the first read.
    pub fn new(url: &str, query: Option<&str>) -> Result<SqlSource> {
        let (driver_url, root_cert) = libpq_tls(url);
        let config: Config = driver_url.parse().map_err(|e| {
            Error::Usage(format!("--data {}: not a PostgreSQL URL: {e}", redact(url)))
        })?;
        if config.get_password().is_some() {
            return Err(Error::Usage(
                "--data: the URL holds a password, which the process list, the shell's history and the manifest would show: give it in PGPASSWORD or ~/.pgpass".into(),
            ));
        }
        let query = query
            .map(|q| q.trim().trim_end_matches(';').trim().to_owned())
            .filter(|q| !q.is_empty())
            .ok_or_else(|| {
                Error::Usage("--data names a database: give the rows to read with --query SQL or --query-file FILE".into())
            })?;
        Ok(SqlSource {
            url: url.to_owned(),
            config,
            root_cert,
            query,
            session: Mutex::new(None),
        })
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Input(format!("{}: {what}: {e}", self.url))
    }

    /// Connects and opens the transaction, once.
    fn session(&self) -> Result<std::sync::MutexGuard<'_, Option<Session>>> {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let mut config = self.config.clone();
            if let Some(pw) = password(&config)? {
                config.password(pw);
            }
            config.application_name("letterpress");
            let tls = tls(self.root_cert.as_deref()).map_err(|e| self.fail("TLS", e))?;
            let mut client = config.connect(tls).map_err(|e| {
                self.fail(
                    "cannot connect (is the server running, the user and database right?)",
                    e,
                )
            })?;
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601'; SET LOCAL extra_float_digits = 1")
                .map_err(|e| self.fail("cannot open a read-only transaction", e))?;
            let columns = self.columns(&mut client)?;
            *guard = Some(Session {
                client,
                columns,
                cursors: 0,
            });
        }
        Ok(guard)
    }

    /// The result's columns, from the prepared query.
    fn columns(&self, client: &mut Client) -> Result<Vec<(String, Kind)>> {
        let stmt = client
            .prepare(&self.query)
            .map_err(|e| self.fail("the query", describe(&e)))?;
        let mut out: Vec<(String, Kind)> = Vec::new();
        for c in stmt.columns() {
            if out.iter().any(|(n, _)| n == c.name()) {
                return Err(self.fail(
                    "the query",
                    format!(
                        "two columns are named `{}`; name each column once (AS)",
                        c.name()
                    ),
                ));
            }
            let kind = match *c.type_() {
                Type::BOOL => Kind::Bool,
                Type::JSON | Type::JSONB => Kind::Json,
                ref t if matches!(t.kind(), postgres::types::Kind::Array(_)) => {
                    return Err(self.fail("the query", format!("the column `{}` is an array ({t}); build a list with json_agg or to_jsonb", c.name())));
                }
                _ => Kind::Text,
            };
            out.push((c.name().to_owned(), kind));
        }
        Ok(out)
    }

    /// Opens a new cursor over the query's rows.
    pub(super) fn rows(self: &Arc<Self>) -> Result<SqlRecords> {
        let name = {
            let mut guard = self.session()?;
            let s = guard.as_mut().expect("connected");
            s.cursors += 1;
            let name = format!("letterpress_rows_{}", s.cursors);
            let declare = format!("DECLARE {name} NO SCROLL CURSOR FOR {}", self.query);
            s.client
                .batch_execute(&declare)
                .map_err(|e| self.fail("the query", describe(&e)))?;
            name
        };
        Ok(SqlRecords {
            source: self.clone(),
            cursor: name,
            batch: Vec::new().into_iter(),
            index: 0,
            done: false,
        })
    }

    fn fetch(&self, cursor: &str) -> Result<Vec<std::result::Result<Map<String, Value>, String>>> {
        let mut guard = self.session()?;
        let s = guard.as_mut().expect("connected");
        let messages = s
            .client
            .simple_query(&format!("FETCH {FETCH} FROM {cursor}"))
            .map_err(|e| self.fail("reading rows", describe(&e)))?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row_record(row, &s.columns)),
                _ => None,
            })
            .collect())
    }
}

/// The row as a record: dotted names nest, JSON parses, NULL is left out.
fn row_record(
    row: &postgres::SimpleQueryRow,
    columns: &[(String, Kind)],
) -> std::result::Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (i, (name, kind)) in columns.iter().enumerate() {
        let Some(text) = row.get(i) else { continue };
        let value = match kind {
            Kind::Text => Value::String(text.to_owned()),
            Kind::Bool => Value::String(if text == "t" { "true" } else { "false" }.into()),
            Kind::Json => {
                serde_json::from_str(text).map_err(|e| format!("column `{name}`: {e}"))?
            }
        };
        let mut at = &mut out;
        let mut parts = name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                at.insert(part.to_owned(), value);
                break;
            }
            let next = at
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match next {
                Value::Object(m) => at = m,
                _ => {
                    return Err(format!(
                        "column `{name}`: `{part}` is also a column of its own"
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// The URL without the libpq TLS options the driver does not read
/// (`sslrootcert`; `sslmode=verify-ca` and `verify-full` become `require`,
/// as every certificate is verified anyway), and the CA file named.
fn libpq_tls(url: &str) -> (String, Option<std::path::PathBuf>) {
    let Some((base, params)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root = None;
    let kept: Vec<String> = params
        .split('&')
        .filter_map(|p| match p.split_once('=') {
            Some(("sslrootcert", v)) => {
                root = Some(std::path::PathBuf::from(
                    v.replace("%2F", "/").replace("%2f", "/"),
                ));
                None
            }
            Some(("sslmode", "verify-ca" | "verify-full")) => Some("sslmode=require".to_owned()),
            _ => Some(p.to_owned()),
        })
        .collect();
    match kept.is_empty() {
        true => (base.to_owned(), root),
        false => (format!("{base}?{}", kept.join("&")), root),
    }
}

/// The TLS connector: rustls with the CA file, libpq's default one, or the
/// public roots.
fn tls(
    root_cert: Option<&std::path::Path>,
) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let default = home.map(|h| h.join(".postgresql/root.crt"));
    let file = root_cert
        .map(std::path::Path::to_path_buf)
        .or(default.filter(|p| p.is_file()));
    let mut roots = rustls::RootCertStore::empty();
    match &file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("{}: no certificate in it", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A PostgreSQL error with its detail, hint and position.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_owned();
            if let Some(d) = db.detail() {
                s += &format!(" ({d})");
            }
            if let Some(h) = db.hint() {
                s += &format!("; {h}");
            }
            s
        }
        None => e.to_string(),
    }
}

/// The URL with any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The password: `PGPASSWORD`, else the password file's line for this host,
/// port, database and user.
fn password(config: &Config) -> Result<Option<String>> {
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        return Ok(Some(pw));
    }
    let Some(path) = postgres_secrets::PgPass::locate() else {
        return Ok(None);
    };
    if !path.is_file() {
        return Ok(None);
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{}: the password file may be read by others (mode {:o}); chmod 600 it, as libpq asks",
            path.display(),
            mode & 0o777
        )));
    }
    let file = postgres_secrets::PgPass::open(&path)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or_default().to_owned();
    let db = config.get_dbname().map_or(user.clone(), str::to_owned);
    let bad = |e: String| Error::Usage(format!("{}: {e}", path.display()));
    let found = file
        .query()
        .hostname(host)
        .and_then(|q| q.port(port))
        .and_then(|q| q.database(db))
        .and_then(|q| q.username(user))
        .map_err(|e| bad(e.to_string()))?
        .find()
        .map_err(|e| bad(e.to_string()))?;
    Ok(found.map(|c| c.password))
}

/// The rows of a cursor, as records.
pub(super) struct SqlRecords {
    source: Arc<SqlSource>,
    cursor: String,
    batch: std::vec::IntoIter<std::result::Result<Map<String, Value>, String>>,
    index: usize,
    done: bool,
}

impl Iterator for SqlRecords {
    type Item = Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(data) = self.batch.next() {
                let rec = RawRecord {
                    index: self.index,
                    line: self.index as u64 + 1,
                    data,
                };
                self.index += 1;
                return Some(Ok(rec));
            }
            if self.done {
                return None;
            }
            match self.source.fetch(&self.cursor) {
                Ok(rows) => {
                    self.done = rows.len() < FETCH;
                    self.batch = rows.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
