//! The `letterpress` command line: parses the flags and calls one library
//! function per command ([`letterpress::ops`]); the top of the data path.
//!
//! One file per command; the flag groups commands share are in [`args`],
//! and every word the command line says goes through [`output`]. Exit
//! codes: 0 everything done, 1 finished but some records failed or were
//! invalid, 2 nothing done (usage, layout, input or environment error),
//! 130/143 stopped by SIGINT/SIGTERM.

mod args;
mod diff;
mod docs;
mod feedback;
mod key;
mod layouts;
mod manifest;
mod output;
mod progress;
mod proof;
mod purge;
mod reconcile;
mod reprint;
#[cfg(feature = "review")]
mod review;
mod run;
mod send;
#[cfg(feature = "serve")]
mod serve;
mod validate;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use letterpress::error::Error;
use output::{LogFormat, Out};

/// Batch rendering of personalised letters from versioned, approved layouts.
#[derive(Parser)]
#[command(name = "letterpress", version, about)]
pub struct Cli {
    /// Folder holding the layouts (`<name>/<version>/layout.yaml`).
    /// (Default `layouts`; `verify --rerender` uses the folder the run
    /// recorded unless this is given.)
    #[arg(long, global = true, env = "LETTERPRESS_LAYOUTS")]
    layouts: Option<PathBuf>,
    /// The trust list: who may submit, approve, reject and revoke layout
    /// versions, with their SSH keys, and the approvals each layout needs.
    /// Deployment configuration, kept outside the layouts folder. (Default
    /// `trust.yaml` in the working folder; without one no version is
    /// approved.)
    #[arg(long, global = true, env = "LETTERPRESS_TRUST")]
    trust: Option<PathBuf>,
    /// How messages on stderr are written: `text` sentences, or `json`, one
    /// object a line (`level`, `event`, `message` and the event's fields),
    /// for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render each record as a PDF letter and/or an email, and write an audit manifest.
    Run(run::Args),
    /// Check every record as a run would before rendering (schema, ids,
    /// routing, suppression, print fields), without rendering or writing.
    Validate(validate::Args),
    /// List and inspect layouts.
    #[command(subcommand)]
    Layouts(layouts::Command),
    /// Submit a finished run's emails to an SMTP relay, each exactly once.
    Send(send::Args),
    /// Check a finished run: every file present and unchanged, nothing
    /// extra, totals reconciled, manifest not edited (exit 1 on a problem).
    Verify(verify::Args),
    /// Render the same records with two layout versions and report what
    /// changes for each customer.
    Diff(diff::Args),
    /// Reprint pieces of a finished print run: the same letters in a new
    /// print file with its own ticket, recorded in the run folder.
    Reprint(reprint::Args),
    /// Read the inserter's result file for a print run: record each
    /// piece's outcome and reprint the pieces that did not make it into
    /// their envelope (exit 1 when anything needs a person).
    Reconcile(reconcile::Args),
    /// The review workspace: compliance reviewers log in with the bank's
    /// identity provider, check proofs and changes, and sign decisions in
    /// the browser.
    #[cfg(feature = "review")]
    Review(review::Args),
    /// The document service: documents on demand and batch jobs over
    /// HTTP, from the same approved layouts (bearer tokens, two lanes,
    /// OpenAPI at /openapi.json).
    #[cfg(feature = "serve")]
    Serve(serve::Args),
    /// Make a bearer token for `serve`: prints the token (shown once) and
    /// its line for the token file (NAME SCOPES SHA256).
    #[cfg(feature = "serve")]
    Token(serve::TokenArgs),
    /// Pick the records a reviewer must see and render them into one proof
    /// PDF (with a cover page saying why each was picked) and one HTML page
    /// of their emails.
    Proof(proof::Args),
    /// Work with run manifests.
    #[command(subcommand)]
    Manifest(manifest::Command),
    /// Delete a finished run's documents after their retention time,
    /// keeping its manifest and journals verifiable.
    Purge(purge::Args),
    /// Bounces, complaints and returned mail into the contact history, and
    /// a customer's history out of it.
    #[command(subcommand)]
    Feedback(feedback::Command),
    /// The deployment's address key, which postal addresses are hashed
    /// with in the contact history and the journals.
    #[command(subcommand)]
    Key(key::Command),
    /// The book's reference pages from the program's own definitions.
    #[command(subcommand, hide = true)]
    Reference(docs::ReferenceCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff), e.g. `letterpress man > letterpress.1`;
    /// with --out DIR, write a page for every command into DIR
    /// (letterpress.1, letterpress-run.1, letterpress-layouts-show.1, ...).
    Man(docs::ManArgs),
}

impl Command {
    /// Whether stdout is to hold the JSON summary only.
    fn json(&self) -> bool {
        match self {
            Command::Run(a) => a.json.json,
            Command::Validate(a) => a.json.json,
            Command::Layouts(c) => c.json(),
            Command::Send(a) => a.json.json,
            Command::Verify(a) => a.json.json,
            Command::Diff(a) => a.json.json,
            Command::Reprint(a) => a.json.json,
            Command::Reconcile(a) => a.json.json,
            Command::Proof(a) => a.json.json,
            Command::Manifest(c) => c.json(),
            Command::Feedback(c) => c.json(),
            Command::Purge(a) => a.json.json,
            #[cfg(feature = "review")]
            Command::Review(_) => false,
            #[cfg(feature = "serve")]
            Command::Serve(_) | Command::Token(_) => false,
            Command::Completions(_) | Command::Man(_) | Command::Key(_) | Command::Reference(_) => {
                false
            }
        }
    }
}

/// The global flags every command sees.
pub struct Context {
    /// `--layouts` (or `LETTERPRESS_LAYOUTS`; default `layouts`).
    pub layouts: PathBuf,
    /// Whether `--layouts` or `LETTERPRESS_LAYOUTS` was given.
    pub layouts_given: bool,
    /// `--trust` (or `LETTERPRESS_TRUST`), if given.
    pub trust: Option<PathBuf>,
    /// Where the command's words go.
    pub out: Out,
}

/// Parses the command line, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly, as with other
    // command-line tools, instead of a panic about a broken pipe.
    // SAFETY: restoring the default signal disposition at start-up, before
    // any thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let out = Out {
        format: cli.log_format,
        json: cli.command.json(),
    };
    let cx = Context {
        layouts_given: cli.layouts.is_some(),
        layouts: cli.layouts.unwrap_or_else(|| PathBuf::from("layouts")),
        trust: cli.trust,
        out,
    };
    let code = dispatch(cli.command, &cx).unwrap_or_else(|e| {
        out.error(&e);
        e.exit_code()
    });
    ExitCode::from(code as u8)
}

fn dispatch(command: Command, cx: &Context) -> Result<i32, Error> {
    match command {
        Command::Run(a) => run::execute(a, cx),
        Command::Validate(a) => validate::execute(a, cx),
        Command::Layouts(c) => layouts::execute(c, cx),
        Command::Send(a) => send::execute(a, cx),
        Command::Verify(a) => verify::execute(a, cx),
        Command::Diff(a) => diff::execute(a, cx),
        Command::Reprint(a) => reprint::execute(a, cx),
        Command::Reconcile(a) => reconcile::execute(a, cx),
        Command::Proof(a) => proof::execute(a, cx),
        #[cfg(feature = "review")]
        Command::Review(a) => review::execute(a, cx),
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::execute(a, cx),
        #[cfg(feature = "serve")]
        Command::Token(a) => serve::token(a),
        Command::Manifest(c) => manifest::execute(c, cx),
        Command::Feedback(c) => feedback::execute(c, cx),
        Command::Purge(a) => purge::execute(a, cx),
        Command::Key(c) => key::execute(c, cx),
        Command::Reference(c) => docs::reference(c),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
    }
}
