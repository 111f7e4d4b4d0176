//! `letterpress review`: the review workspace (see the binary's `review`
//! module and the book's chapter "The review workspace").

use std::net::SocketAddr;
use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK};
use letterpress::util::clock::Date;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen (address and port). Beyond loopback only with
    /// --tls-cert and --tls-key.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The TLS certificate chain (PEM) to serve HTTPS with.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The URL browsers reach the workspace at (the identity provider
    /// sends them back to URL/callback; default http://LISTEN).
    #[arg(long, value_name = "URL", env = "LETTERPRESS_REVIEW_URL")]
    pub public_url: Option<String>,
    /// The sample data proofs and diffs are made from: FILE for every
    /// layout, or LAYOUT=FILE for one (repeat).
    #[arg(long, value_name = "[LAYOUT=]FILE", required = true)]
    pub data: Vec<String>,
    /// A folder of run folders: runs of layouts whose policy asks for a
    /// release are released (or stopped) here.
    #[arg(long, value_name = "DIR")]
    pub runs: Option<PathBuf>,
    /// Where the workspace keeps proofs, diffs and comments.
    #[arg(long, value_name = "DIR", default_value = "review-state")]
    pub state: PathBuf,
    /// The workspace's private SSH key (unencrypted, mode 600), whose
    /// public key the trust list's `workspace` names.
    #[arg(long, value_name = "FILE", env = "LETTERPRESS_REVIEW_KEY")]
    pub key: PathBuf,
    /// The client id registered at the identity provider.
    #[arg(long, env = "LETTERPRESS_OIDC_CLIENT_ID")]
    pub client_id: String,
    /// A file holding the client's secret (or LETTERPRESS_OIDC_CLIENT_SECRET).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// The bank's own certificate authorities (PEM), trusted for the
    /// identity provider beside the public roots.
    #[arg(long, value_name = "FILE")]
    pub oidc_ca: Option<PathBuf>,
    /// The ID token claim that lists the user's groups.
    #[arg(long, default_value = "groups")]
    pub groups_claim: String,
    /// Seconds since the last login within which a decision may be
    /// signed; older, the reviewer logs in again first.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub max_age: u64,
    /// Minutes a session may be idle before it ends (a fraction too:
    /// 0.5 is 30 seconds).
    #[arg(long, value_name = "MINUTES", default_value_t = 15.0, value_parser = parse_minutes)]
    pub idle: f64,
    /// The day proofs and the queue are made for (YYYY-MM-DD; default
    /// today, UTC).
    #[arg(long, value_parser = super::args::parse_date)]
    pub as_of: Option<Date>,
}

/// Minutes, more than 0 and at most a day.
fn parse_minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m > 0.0 && m <= 1440.0 => Ok(m),
        _ => Err(format!(
            "`{s}` is not a number of minutes between 0 and 1440"
        )),
    }
}

pub fn execute(a: Args, cx: &Context) -> Result<i32, Error> {
    let secret = match (
        &a.client_secret_file,
        std::env::var("LETTERPRESS_OIDC_CLIENT_SECRET"),
    ) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map_err(|e| Error::io(f, e))?
            .trim()
            .to_owned(),
        (None, Ok(s)) => s,
        (None, Err(_)) => return Err(Error::Usage(
            "give the client's secret with --client-secret-file or LETTERPRESS_OIDC_CLIENT_SECRET"
                .into(),
        )),
    };
    let data = a
        .data
        .iter()
        .map(|d| match d.split_once('=') {
            Some((l, f)) => (Some(l.to_owned()), PathBuf::from(f)),
            None => (None, PathBuf::from(d)),
        })
        .collect();
    crate::review::serve(crate::review::Config {
        listen: a.listen,
        public_url: a.public_url,
        tls: a.tls_cert.zip(a.tls_key),
        layouts: cx.layouts.clone(),
        trust: cx.trust.clone(),
        data,
        runs: a.runs,
        state: a.state,
        key: a.key,
        client_id: a.client_id,
        client_secret: secret,
        oidc_ca: a.oidc_ca,
        groups_claim: a.groups_claim,
        max_age: std::time::Duration::from_secs(a.max_age),
        idle: std::time::Duration::from_secs_f64(a.idle * 60.0),
        as_of: a.as_of,
    })?;
    Ok(EXIT_OK)
}
