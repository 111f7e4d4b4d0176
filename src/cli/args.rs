//! The flag groups several commands share, each defined once with its help
//! text, and the parsers of flag values.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use letterpress::error::Error;
use letterpress::model::vocab::{Channel, Format, Named};
use letterpress::util::clock::Date;

/// A parser for a word of the library's vocabulary: its names are the
/// possible values (shown by `--help` and completed by the shell).
pub fn named<T: Named + Send + Sync + Clone>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(
        T::ALL
            .iter()
            .map(|v| PossibleValue::new(v.name()).help(v.help())),
    )
    .map(|s| T::parse_named(&s).expect("one of the possible values"))
}

/// `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s).ok_or_else(|| format!("`{s}` is not a date of the form YYYY-MM-DD"))
}

/// Seconds, more than 0 and at most a day.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

/// A rate per second: `20` or `20/s`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|r| *r > 0.0 && r.is_finite())
        .ok_or_else(|| format!("`{s}` is not a rate like 20/s"))
}

/// `--json`.
#[derive(clap::Args)]
pub struct Json {
    /// Print the result as one JSON object on stdout (with
    /// `summary_version` and `exit_code`; on an error, `error`).
    #[arg(long)]
    pub json: bool,
}

/// `--as-of`.
#[derive(clap::Args)]
pub struct AsOf {
    /// The date templates see as today (YYYY-MM-DD; default: today, UTC).
    /// It also picks the layout version a name without `@N` means: the
    /// highest approved on or before it and in effect on it.
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<Date>,
}

impl AsOf {
    /// The date, today (UTC) by default.
    pub fn day(&self) -> Date {
        self.as_of.unwrap_or_else(Date::today_utc)
    }
}

/// `--data`, `--format` and `--query`: the records.
#[derive(clap::Args)]
pub struct Records {
    /// Data file: .csv, .json (array of objects), .jsonl, .xml or a
    /// fixed-width file (--format fixed), mapped by the layout's `input`;
    /// or a database, postgresql://USER@HOST[:PORT]/DB, read with --query.
    #[arg(long)]
    pub data: PathBuf,
    /// Data format, when the file extension does not tell.
    #[arg(long, value_parser = named::<Format>())]
    pub format: Option<Format>,
    /// The SQL query whose rows are the records (with a postgresql:// --data).
    #[arg(long, value_name = "SQL", conflicts_with = "query_file")]
    pub query: Option<String>,
    /// A file holding the SQL query.
    #[arg(long, value_name = "FILE")]
    pub query_file: Option<PathBuf>,
}

impl Records {
    /// The query, from --query or read from --query-file.
    pub fn query(&self) -> Result<Option<String>, Error> {
        match (&self.query, &self.query_file) {
            (Some(q), _) => Ok(Some(q.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| Error::Usage(format!("--query-file {}: {e}", path.display()))),
            (None, None) => Ok(None),
        }
    }
}

/// `--expect-records`: the sender's control total.
#[derive(clap::Args)]
pub struct ControlTotal {
    /// The number of records the data must hold (the sender's control
    /// total); another count stops before anything is rendered (exit 2),
    /// naming both figures.
    #[arg(long, value_name = "N")]
    pub expect_records: Option<usize>,
}

/// The contact history database (see `letterpress::contacts`).
#[derive(clap::Args)]
pub struct ContactsDb {
    /// The contact history: a SQLite database of what happened to what was
    /// sent to each customer (accepted, bounced, returned), created on first
    /// use. Without it, nothing is recorded or read.
    #[arg(long, value_name = "DB", env = "LETTERPRESS_CONTACTS")]
    pub contacts: Option<PathBuf>,
    /// The deployment's secret that postal addresses are hashed with in the
    /// contact history and the journal (needed with --contacts): a file of
    /// 64 hexadecimal digits, made by `letterpress key new FILE`.
    #[arg(long, value_name = "FILE", env = "LETTERPRESS_ADDRESS_KEY_FILE")]
    pub address_key: Option<PathBuf>,
}

impl ContactsDb {
    /// The address key, loaded when the contact history is used.
    pub fn key(&self) -> Result<Option<letterpress::contacts::AddressKey>, Error> {
        match (&self.contacts, &self.address_key) {
            (Some(_), Some(path)) => Ok(Some(letterpress::contacts::AddressKey::load(path)?)),
            _ => Ok(None),
        }
    }
}

/// The folder of a finished run: `RUN_DIR` (or `--run RUN_DIR`).
#[derive(clap::Args)]
pub struct RunFolder {
    /// The folder of a finished run (holding manifest.json).
    #[arg(value_name = "RUN_DIR", required_unless_present = "run")]
    run_dir: Option<PathBuf>,
    /// The same as RUN_DIR.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_dir")]
    run: Option<PathBuf>,
}

impl RunFolder {
    /// The folder, however it was given.
    pub fn path(&self) -> PathBuf {
        self.run_dir
            .clone()
            .or_else(|| self.run.clone())
            .expect("clap requires one of them")
    }
}

/// The options that decide how records are checked and routed: the same
/// for `run` and for `validate`, its pre-flight.
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub as_of: AsOf,
    /// Channels to render, comma-separated (pdf, email, web); default: the layout's.
    #[arg(long, value_parser = named::<Channel>(), value_delimiter = ',')]
    pub channels: Option<Vec<Channel>>,
    /// Suppression list: one record id or email address a line (notes
    /// after `#` or a tab); matching records get nothing, the manifest says
    /// why, and entries that match nobody are listed.
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,
    /// Also write print files in mailing order and a job ticket to <out>/print/.
    #[arg(long)]
    pub print: bool,
    /// A presort tool's sequence file: one record id a line, in mailing order.
    #[arg(long, value_name = "FILE", requires = "print")]
    pub sequence: Option<PathBuf>,
    /// Put the letters of one household into one mail piece, as the
    /// layout's print.household allows (see "Print files for the inserter" in the book).
    #[arg(long, requires = "print")]
    pub household: bool,
    /// Route with the contact history: no email to an address that bounced
    /// for good (or softly, too often) or to a customer who complained.
    #[command(flatten)]
    pub contacts: ContactsDb,
    /// Take a version that is not approved for the day (never submitted,
    /// waiting for review, rejected, revoked, changed since it was
    /// submitted, retired, or out of its effective dates) as a review copy:
    /// every page marked DRAFT - NOT APPROVED, email subjects start with
    /// [DRAFT], and `send` refuses the run.
    #[arg(long)]
    pub allow_draft: bool,
}

/// How long a command's lock holds (`run`, `send`; see
/// `letterpress::util::lock`).
#[derive(clap::Args)]
pub struct LockLease {
    /// Seconds the lock on the folder holds without being renewed; the
    /// command renews it about every twelfth of that (every 10 s by
    /// default) while it works. A lock left by a killed process or a lost
    /// node is taken over, from any host, once this has passed since its
    /// last renewal; a live holder is always refused.
    #[arg(
        long = "lock-lease",
        value_name = "SECONDS",
        env = "LETTERPRESS_LOCK_LEASE",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub seconds: u64,
    /// Seconds to wait for a lock another process holds (until it ends,
    /// or its lease expires) before giving up with exit 2; default 0. A
    /// retry on another node, whose lost attempt's lease has not expired
    /// yet, waits it out with a value above the lease.
    #[arg(
        long = "lock-wait",
        value_name = "SECONDS",
        env = "LETTERPRESS_LOCK_WAIT",
        default_value_t = 0
    )]
    pub wait: u64,
}

impl LockLease {
    /// The terms.
    pub fn terms(&self) -> letterpress::util::lock::LockTerms {
        letterpress::util::lock::LockTerms {
            lease: std::time::Duration::from_secs(self.seconds),
            wait: std::time::Duration::from_secs(self.wait),
        }
    }
}

/// SIGTERM and SIGINT stop the command cleanly; see `letterpress::util::stop`.
pub fn on_signals() -> Result<letterpress::util::stop::StopFlag, Error> {
    letterpress::util::stop::StopFlag::on_signals()
        .map_err(|e| Error::Usage(format!("cannot install the signal handlers: {e}")))
}

/// `--layout` for the commands that render for customers.
#[derive(clap::Args)]
pub struct LayoutArg {
    /// Layout to use: NAME (the highest version approved on or before the
    /// as-of date and in effect on it) or NAME@VERSION (exactly that one,
    /// which must be approved, unchanged since its approval, and in effect).
    #[arg(long)]
    pub layout: letterpress::model::layout::LayoutRef,
}
