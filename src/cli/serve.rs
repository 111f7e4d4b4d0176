//! `letterpress serve` and `letterpress token`: the document service (see
//! the binary's `serve` module and the book's chapter "On demand").

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK};

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen (address and port). Beyond loopback only with
    /// --tls-cert and --tls-key.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The TLS certificate chain (PEM) to serve HTTPS with.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The token file: one client a line, `NAME SCOPES SHA256` (see
    /// `letterpress token`).
    #[arg(long, value_name = "FILE", env = "LETTERPRESS_TOKENS")]
    pub tokens: PathBuf,
    /// Where jobs and the on-demand journal are kept.
    #[arg(long, value_name = "DIR", default_value = "serve-state")]
    pub state: PathBuf,
    /// Documents rendered on demand at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// On-demand requests that may wait for a worker; beyond them the
    /// answer is 429 at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub queue: usize,
    /// An on-demand request's time budget in seconds, its time in the
    /// queue included.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds one on-demand document may keep a worker; a worker still on
    /// it then is given up and replaced (a template that loops on some
    /// data). /healthz answers 503 once as many are stuck as there are
    /// workers.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub doc_timeout: f64,
    /// Rendering workers of a batch job (on lower-priority threads).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub job_workers: usize,
    /// The largest on-demand request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// The largest job data, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 30)]
    pub max_job_bytes: u64,
    /// Seconds new requests get 503 after SIGTERM before the listener
    /// closes (for a load balancer to take the instance out).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub drain_seconds: f64,
}

pub fn execute(a: Args, cx: &Context) -> Result<i32, Error> {
    let seconds = |s: f64, flag: &str| {
        (0.0..=86_400.0)
            .contains(&s)
            .then(|| std::time::Duration::from_secs_f64(s))
            .ok_or_else(|| Error::Usage(format!("{flag} must be between 0 and 86400 seconds")))
    };
    crate::serve::serve(crate::serve::Config {
        listen: a.listen,
        tls: a.tls_cert.zip(a.tls_key),
        layouts: cx.layouts.clone(),
        trust: cx.trust.clone(),
        tokens: a.tokens,
        state: a.state,
        workers: a
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        queue: a.queue,
        timeout: seconds(a.timeout, "--timeout")?,
        doc_timeout: seconds(a.doc_timeout, "--doc-timeout")?,
        job_workers: a.job_workers,
        max_body: a.max_body,
        max_job_bytes: a.max_job_bytes,
        drain: seconds(a.drain_seconds, "--drain-seconds")?,
    })?;
    Ok(EXIT_OK)
}

#[derive(clap::Args)]
pub struct TokenArgs {
    /// The client's name (one word), as the on-demand journal and the
    /// jobs record it.
    pub name: String,
    /// What it may do: render, jobs, admin (comma-separated).
    #[arg(long, default_value = "render")]
    pub scopes: String,
    /// Append the line to this token file (else print it).
    #[arg(long, value_name = "FILE")]
    pub append: Option<PathBuf>,
}

/// Prints a new token (once: only its hash is kept) and its line.
pub fn token(a: TokenArgs) -> Result<i32, Error> {
    let (line, token) = crate::serve::new_token(&a.name, &a.scopes)?;
    match &a.append {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            f.write_all(format!("{line}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(path, e))?;
            println!("{token}");
        }
        None => println!("{token}\n{line}"),
    }
    Ok(EXIT_OK)
}
