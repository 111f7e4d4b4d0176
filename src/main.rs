//! The `letterpress` command line: a thin shell over the library.
//!
//! Every flag is defined here, in one place. Exit codes: 0 everything done,
//! 1 finished but some records failed or were invalid, 2 nothing done
//! (usage, layout or input error; nothing was written).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use letterpress::clock::Date;
use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::input::Format;
use letterpress::layout::{Catalog, LayoutRef};
use letterpress::progress::{log, LogFormat, ProgressMode};
use letterpress::render::pdf::Standard;
use letterpress::route::Channel;
use letterpress::run::{self, RunOptions};
use letterpress::schema::FieldSpec;

/// Batch rendering of personalised letters from versioned, approved layouts.
#[derive(Parser)]
#[command(name = "letterpress", version, about)]
struct Cli {
    /// Folder holding the layouts (`<name>/<version>/layout.yaml`).
    #[arg(
        long,
        global = true,
        env = "LETTERPRESS_LAYOUTS",
        default_value = "layouts"
    )]
    layouts: PathBuf,
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
    Run(RunArgs),
    /// Check every record as a run would before rendering (schema, ids,
    /// routing, suppression, print fields), without rendering or writing.
    Validate(ValidateArgs),
    /// List and inspect layouts.
    #[command(subcommand)]
    Layouts(LayoutsCommand),
    /// Submit a finished run's emails to an SMTP relay, each exactly once.
    Send(SendArgs),
    /// Check a finished run: every file present and unchanged, nothing
    /// extra, totals reconciled, manifest not edited (exit 1 on a problem).
    Verify(VerifyArgs),
    /// Render the same records with two layout versions and report what
    /// changes for each customer.
    Diff(DiffArgs),
    /// Reprint pieces of a finished print run: the same letters in a new
    /// print file with its own ticket, recorded in the run folder.
    Reprint(ReprintArgs),
    /// Pick the records a reviewer must see and render them into one proof
    /// PDF (with a cover page saying why each was picked) and one HTML page
    /// of their emails.
    Proof(ProofArgs),
    /// Work with run manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `letterpress man > letterpress.1`;
    /// with --out DIR, write a page for every command into DIR
    /// (letterpress.1, letterpress-run.1, letterpress-layouts-show.1, ...).
    Man {
        /// The folder to write every page into (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Combine the manifests of a sharded run (`run --shard K/N`) into one
    /// run manifest; refuses shards that overlap, are missing or unfinished,
    /// or used another input, layout or options.
    Merge {
        /// The run folder holding `shard-K-of-N` folders, or the shard
        /// folders themselves.
        #[arg(required = true)]
        folders: Vec<PathBuf>,
        /// Where the merged manifest goes; default: the shards' run folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ReprintArgs {
    /// The folder of a finished run made with --print.
    run_dir: PathBuf,
    /// Piece (sequence) numbers, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pieces: Vec<u32>,
    /// Record ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    records: Vec<String>,
}

#[derive(clap::Args)]
struct ProofArgs {
    /// Layout to proof: NAME@VERSION (any status) or NAME.
    #[arg(long)]
    layout: LayoutRef,
    /// Data file: .csv, .json or .jsonl.
    #[arg(long)]
    data: PathBuf,
    /// Data format, when the file extension does not tell.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The proof PDF to write; the emails go next to it as .html.
    #[arg(long)]
    out: PathBuf,
    /// Random records on top of the chosen ones.
    #[arg(long, default_value_t = 3)]
    sample: usize,
    /// The seed of the random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The date templates see as today (default: today, UTC).
    #[arg(long, value_parser = parse_date)]
    as_of: Option<Date>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// The old version, NAME@A.
    old: LayoutRef,
    /// The new version, NAME@B.
    new: LayoutRef,
    /// Data file: .csv, .json or .jsonl.
    #[arg(long)]
    data: PathBuf,
    /// Data format, when the file extension does not tell.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The date templates see as today (default: today, UTC).
    #[arg(long, value_parser = parse_date)]
    as_of: Option<Date>,
    /// Also write the report as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The folder of a finished run (holding manifest.json).
    run_dir: PathBuf,
    /// Also render K records again (a seeded choice) from the recorded input
    /// and layout version and compare the bytes.
    #[arg(long, value_name = "K", default_value_t = 0)]
    rerender: usize,
    /// The seed of the choice of records to render again.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SendArgs {
    /// The folder of a finished run (holding manifest.json).
    #[arg(long = "run", value_name = "DIR")]
    run_dir: PathBuf,
    /// The relay: smtps://host[:465], smtp://host[:587] (STARTTLS), or
    /// smtp://127.0.0.1:PORT?tls=none for a local relay. Credentials come
    /// from LETTERPRESS_SMTP_USER and LETTERPRESS_SMTP_PASSWORD.
    #[arg(long, env = "LETTERPRESS_SMTP_URL", default_value = "")]
    smtp: String,
    /// A PEM CA certificate to trust besides the public roots (a relay with
    /// a company-internal certificate).
    #[arg(long = "smtp-ca", value_name = "FILE")]
    smtp_ca: Option<PathBuf>,
    /// Global rate limit, messages per second (e.g. 20 or 20/s).
    #[arg(long, default_value = "10/s", value_parser = parse_rate)]
    rate: f64,
    /// Parallel SMTP connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Attempts per message before a temporary failure counts as failed.
    #[arg(long, default_value_t = 4)]
    max_attempts: u32,
    /// Seconds before the first retry of a temporary failure (doubles each time).
    #[arg(long, default_value_t = 2.0)]
    retry_delay: f64,
    /// List what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|r| *r > 0.0 && r.is_finite())
        .ok_or_else(|| format!("`{s}` is not a rate like 20/s"))
}

#[derive(clap::Args)]
struct DataArgs {
    /// Layout to use: NAME (highest approved version) or NAME@VERSION.
    #[arg(long)]
    layout: LayoutRef,
    /// Data file: .csv, .json (array of objects) or .jsonl.
    #[arg(long)]
    data: PathBuf,
    /// Data format, when the file extension does not tell.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The options that decide how records are checked and routed: the same
/// for `run` and for `validate`, its pre-flight.
#[derive(clap::Args)]
struct CheckArgs {
    /// The date templates see as today (YYYY-MM-DD); default: today (UTC).
    /// It also picks the layout version: the highest approved on or before
    /// it and in effect on it.
    #[arg(long, value_parser = parse_date)]
    as_of: Option<Date>,
    /// Channels to render, comma-separated (pdf, email); default: the layout's.
    #[arg(long, value_enum, value_delimiter = ',')]
    channels: Option<Vec<Channel>>,
    /// Suppression list: one record id or email address a line (notes
    /// after `#` or a tab); matching records get nothing, the manifest says
    /// why, and entries that match nobody are listed.
    #[arg(long, value_name = "FILE")]
    suppress: Option<PathBuf>,
    /// Also write print files in mailing order and a job ticket to <out>/print/.
    #[arg(long)]
    print: bool,
    /// A presort tool's sequence file: one record id a line, in mailing order.
    #[arg(long, value_name = "FILE", requires = "print")]
    sequence: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ValidateArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    check: CheckArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    check: CheckArgs,
    /// Output folder; must not hold another run (unless --resume).
    #[arg(long)]
    out: PathBuf,
    /// Continue the interrupted run in --out: keep every document whose
    /// journal entry and file agree, render the rest. Starts the run if
    /// there is none; does nothing if it finished. Schedulers should always
    /// pass it, so a retry continues instead of failing.
    #[arg(long)]
    resume: bool,
    /// Render only shard K of N (1 <= K <= N), chosen by a hash of the
    /// record id, so N machines share one batch; its manifest goes to
    /// <out>/shard-K-of-N/. Combine with `letterpress manifest merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<letterpress::manifest::Shard>,
    /// Progress while the run goes: a bar on a terminal, log lines every
    /// 10 s otherwise (`auto`), or always `bar`, `lines`, or `none`.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// The longest one record may take to render, in seconds; a record
    /// that takes longer fails with that reason and the run goes on.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_timeout)]
    doc_timeout: f64,
    /// Rendering workers; default: one per core.
    #[arg(long)]
    jobs: Option<usize>,
    /// Also conform to a PDF standard (repeatable). Letters are tagged PDF always.
    #[arg(long = "pdf-standard", value_enum)]
    pdf_standards: Vec<Standard>,
    /// Render a version that is not approved (draft, retired, changed since
    /// its approval, or out of its effective dates) as a review copy: every
    /// page marked DRAFT - NOT APPROVED, email subjects start with [DRAFT].
    #[arg(long)]
    allow_draft: bool,
}

#[derive(Subcommand)]
enum LayoutsCommand {
    /// Print a table of every layout version (exit 1 if any is broken).
    List,
    /// Print a layout version's metadata, approval and field schema.
    Show {
        /// NAME (the approved version in effect on --as-of) or NAME@VERSION.
        layout: LayoutRef,
        /// Which version was in effect on this date (default: today).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<Date>,
    },
    /// Approve a layout version: record who approved it, when, and the hash
    /// of every file, and set its status to approved.
    Approve {
        /// NAME@VERSION.
        layout: LayoutRef,
        /// Who approves it.
        #[arg(long)]
        by: String,
        /// A note, e.g. the review ticket.
        #[arg(long)]
        note: Option<String>,
        /// The approval date (default: today, UTC).
        #[arg(long, value_parser = parse_date)]
        date: Option<Date>,
    },
    /// Check every version against its approval: exit 1 if an approved
    /// version has no approval record or its files changed.
    Check,
    /// Write a working first version of a new layout (draft) with a sample
    /// data file, ready to render with --allow-draft.
    New {
        /// The layout's name: lower-case letters, digits and `-`.
        name: String,
    },
}

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s).ok_or_else(|| format!("`{s}` is not a date of the form YYYY-MM-DD"))
}

fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly, as with other
    // command-line tools, instead of a panic about a broken pipe.
    // SAFETY: restoring the default signal disposition at start-up, before
    // any thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let format = cli.log_format;
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e @ Error::Stopped { .. }) => {
            log(
                format,
                "warning",
                "stopped",
                &e.to_string(),
                serde_json::json!({"exit_code": e.exit_code()}),
            );
            e.exit_code()
        }
        Err(e) => {
            log(
                format,
                "error",
                "error",
                &e.to_string(),
                serde_json::json!({"exit_code": e.exit_code()}),
            );
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

fn dispatch(cli: Cli) -> Result<i32, Error> {
    let format = cli.log_format;
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "letterpress", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { out } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match out {
                None => clap_mangen::Man::new(cmd)
                    .render(&mut std::io::stdout())
                    .map_err(|e| Error::io("stdout", e))?,
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::io(&dir, e))?;
                    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
                        .map_err(|e| Error::io(&dir, e))?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "1"))
                        .collect();
                    pages.sort();
                    for p in pages {
                        println!("{}", p.display());
                    }
                }
            }
            Ok(0)
        }
        Command::Layouts(LayoutsCommand::New { name }) => {
            let files = letterpress::scaffold::new_layout(&cli.layouts, &name)?;
            for f in &files {
                println!("{}", f.display());
            }
            let data = cli.layouts.join(&name).join("sample-data.csv");
            eprintln!(
                "letterpress: wrote {name}@1 (a draft). Render it now:\n  letterpress run --layout {name}@1 --data {} --out out/{name} --allow-draft\nthen change texts.yaml, letter.typ and the email templates, look at the result, and ask for approval:\n  letterpress layouts approve {name}@1 --by \"Your Name\"",
                data.display()
            );
            Ok(0)
        }
        Command::Run(args) => {
            let json = args.data.json;
            run_command(&cli.layouts, args, format).inspect_err(|e| json_error(json, e))
        }
        Command::Validate(args) => {
            let json = args.data.json;
            validate_command(&cli.layouts, args).inspect_err(|e| json_error(json, e))
        }
        Command::Reprint(args) => {
            let r = letterpress::print::reprint(&args.run_dir, &args.pieces, &args.records)?;
            for f in &r.files {
                println!("{}", args.run_dir.join(&f.path).display());
            }
            eprintln!(
                "letterpress: reprint {} of {}: pieces {}",
                r.reprint,
                args.run_dir.display(),
                r.pieces
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(EXIT_OK)
        }
        Command::Proof(args) => {
            let json = args.json;
            proof_command(&cli.layouts, args).inspect_err(|e| json_error(json, e))
        }
        Command::Diff(args) => {
            let json = args.json;
            diff_command(&cli.layouts, args).inspect_err(|e| json_error(json, e))
        }
        Command::Manifest(ManifestCommand::Merge { folders, out, json }) => {
            let merged = letterpress::merge::merge(&folders, out.as_deref())
                .inspect_err(|e| json_error(json, e))?;
            eprintln!(
                "letterpress: merged {} shards: {} records, {} documents ({} rendered, {} failed, {} suppressed, {} routed elsewhere); manifest {}",
                merged.shards,
                merged.totals.records,
                merged.totals.documents,
                merged.totals.rendered,
                merged.totals.failed,
                merged.totals.suppressed,
                merged.totals.routed_elsewhere,
                merged.manifest.display()
            );
            let code = if merged.totals.failed == 0 { 0 } else { 1 };
            if json {
                let mut doc = serde_json::to_value(&merged).expect("serializes");
                doc["summary_version"] = 1.into();
                doc["exit_code"] = code.into();
                println!("{doc}");
            }
            Ok(code)
        }
        Command::Verify(args) => {
            let json = args.json;
            verify_command(&cli.layouts, args).inspect_err(|e| json_error(json, e))
        }
        Command::Send(args) => {
            let json = args.json;
            send_command(args).inspect_err(|e| json_error(json, e))
        }
        Command::Layouts(LayoutsCommand::List) => {
            let catalog = Catalog::discover(&cli.layouts)?;
            print!("{}", layouts_table(&catalog));
            for (dir, why) in catalog.broken.values().flatten() {
                eprintln!("broken: {}: {why}", dir.display());
            }
            Ok(if catalog.broken.is_empty() {
                EXIT_OK
            } else {
                EXIT_PARTIAL
            })
        }
        Command::Layouts(LayoutsCommand::Approve {
            layout,
            by,
            note,
            date,
        }) => {
            let Some(version) = layout.version else {
                return Err(Error::Usage(format!(
                    "name the version to approve: {}@N",
                    layout.name
                )));
            };
            let catalog = Catalog::discover(&cli.layouts)?;
            let found = catalog
                .layouts
                .get(&layout.name)
                .and_then(|v| v.get(&version))
                .ok_or_else(|| Error::Layout(format!("no layout version {layout}")))?;
            let a = letterpress::approval::approve(
                found,
                &by,
                note.as_deref(),
                date.unwrap_or_else(Date::today_utc),
            )?;
            println!(
                "{layout}: approved by {} on {}; digest {}; {} files recorded in {}",
                a.approved_by,
                a.approved_on,
                a.digest,
                a.files.len(),
                found
                    .dir
                    .join(letterpress::approval::APPROVAL_FILE)
                    .display()
            );
            Ok(EXIT_OK)
        }
        Command::Layouts(LayoutsCommand::Check) => {
            let catalog = Catalog::discover(&cli.layouts)?;
            let mut bad = 0;
            for versions in catalog.layouts.values() {
                for l in versions.values() {
                    let standing = letterpress::approval::standing(l, &l.read_files()?)?;
                    let ok = l.meta.status != letterpress::layout::Status::Approved
                        || standing.is_approved();
                    if !ok {
                        bad += 1;
                    }
                    println!(
                        "{:<24} {:<9} {:<32} {}{}",
                        l.id(),
                        l.meta.status.to_string(),
                        l.meta.effective(),
                        if ok { "" } else { "PROBLEM: " },
                        standing.describe()
                    );
                }
            }
            for (dir, why) in catalog.broken.values().flatten() {
                bad += 1;
                println!("broken: {}: {why}", dir.display());
            }
            Ok(if bad == 0 { EXIT_OK } else { EXIT_PARTIAL })
        }
        Command::Layouts(LayoutsCommand::Show { layout, as_of }) => {
            let day = as_of.unwrap_or_else(Date::today_utc);
            let layout = run::find_layout(&cli.layouts, &layout, day)?;
            let files = layout.read_files()?;
            let digest = files.digest.clone();
            let standing = letterpress::approval::standing(&layout, &files)?;
            let m = &layout.meta;
            println!("layout:      {}", layout.id());
            println!("title:       {}", m.title);
            println!("status:      {}", m.status);
            println!("approval:    {}", standing.describe());
            if let Some(note) = standing.approval().and_then(|a| a.note.as_deref()) {
                println!("             note: {note}");
            }
            if let Some(a) = standing.approval() {
                println!("approvals:   (every approval of this version, oldest first)");
                for r in a.all() {
                    println!(
                        "             {} by {}{}; digest {}{}",
                        r.approved_on,
                        r.approved_by,
                        r.note
                            .as_deref()
                            .map_or(String::new(), |n| format!(" ({n})")),
                        &r.digest[..12.min(r.digest.len())],
                        r.recorded_at
                            .as_deref()
                            .map_or(String::new(), |t| format!("; recorded {t}"))
                    );
                }
            }
            println!(
                "effective:   {}{}{}",
                m.effective(),
                layout
                    .approved_since
                    .map_or(String::new(), |d| format!(", approved since {d}")),
                if layout.in_effect(day) {
                    format!(" (in effect on {day})")
                } else {
                    format!(" (NOT in effect on {day})")
                }
            );
            println!("description: {}", m.description.trim());
            println!("folder:      {}", layout.dir.display());
            println!("template:    {}", m.template);
            println!(
                "page:        {} (at most {} pages)",
                m.page.format.name(),
                m.page.max_pages
            );
            println!("id field:    {}", m.id_field);
            let channels: Vec<&str> = m.default_channels().iter().map(|c| c.name()).collect();
            println!("channels:    {}", channels.join(", "));
            println!(
                "locale:      field {}, default {}",
                m.locale_field.as_deref().unwrap_or("(none)"),
                m.default_locale
            );
            if let Some(e) = &m.email {
                println!("email:       from {}, to field {}", e.from, e.to_field);
                println!("             subject {}", e.subject);
            }
            println!("digest:      {digest}");
            println!("fields:");
            print_fields(&m.fields, 1);
            Ok(EXIT_OK)
        }
    }
}

/// With `--json`, a command that stops with an error still prints a JSON
/// document on stdout, so a scheduler always has one to parse.
fn json_error(json: bool, e: &Error) {
    if json {
        let doc = serde_json::json!({
            "summary_version": 1,
            "exit_code": e.exit_code(),
            "error": e.to_string(),
        });
        println!("{doc}");
    }
}

fn run_command(layouts: &std::path::Path, args: RunArgs, format: LogFormat) -> Result<i32, Error> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = RunOptions {
        layouts_dir: layouts.to_path_buf(),
        layout: args.data.layout.clone(),
        data: args.data.data,
        format: args.data.format,
        out: args.out,
        as_of: args.check.as_of,
        jobs,
        standards: args.pdf_standards,
        command: std::env::args().collect(),
        channels: args.check.channels,
        suppress: args.check.suppress,
        allow_draft: args.allow_draft,
        print: args.check.print,
        sequence: args.check.sequence,
        only: None,
        resume: args.resume,
        shard: args.shard,
        doc_timeout: std::time::Duration::from_secs_f64(args.doc_timeout),
        progress: args.progress,
        log_format: format,
        stop: on_signals()?,
    };
    let report = run::run(&opts)?;
    if report.already_finished {
        log(
            format,
            "info",
            "already_finished",
            &format!(
                "the run in {} had already finished; nothing to do",
                report.manifest_path.display()
            ),
            serde_json::json!({"manifest": report.manifest_path}),
        );
    }
    if let Some(r) = &report.resumed {
        log(
            format,
            "info",
            "resumed",
            &format!(
                "resumed: kept {} records done before{}",
                r.kept_records,
                r.cut.as_ref().map_or(String::new(), |c| format!(
                    " (the journal was cut where {c})"
                ))
            ),
            serde_json::json!({"kept_records": r.kept_records, "cut": r.cut}),
        );
    }
    for warning in &report.warnings {
        log(
            format,
            "warning",
            "layout_warning",
            &format!("{}: {warning}", opts.layout),
            serde_json::json!({"layout": opts.layout.to_string()}),
        );
    }
    let m = &report.manifest;
    let t = &m.totals;
    let per_channel: Vec<String> = t
        .channels
        .iter()
        .map(|(name, c)| {
            format!(
                "{name}: {} rendered, {} failed, {} suppressed, {} routed elsewhere",
                c.rendered, c.failed, c.suppressed, c.routed_elsewhere
            )
        })
        .collect();
    // The rate of this attempt: what a resumed run kept is not counted.
    let kept = report.resumed.as_ref().map_or(0, |r| r.kept_records) * t.channels.len();
    let per_second = t.documents.saturating_sub(kept) as f64 / report.seconds.max(1e-9);
    let rate = if report.already_finished {
        String::new()
    } else {
        format!(" in {:.1} s ({per_second:.0} documents/s)", report.seconds)
    };
    let report_path = report
        .manifest_path
        .with_file_name(letterpress::report::REPORT_FILE);
    log(
        format,
        "info",
        "finished",
        &format!(
            "{}@{}: {} records; {}; {} pages, {:.1} MB{rate}; manifest {}, report {}",
            m.layout.name,
            m.layout.version,
            t.records,
            per_channel.join("; "),
            t.pages,
            t.bytes as f64 / 1e6,
            report.manifest_path.display(),
            report_path.display()
        ),
        serde_json::json!({
            "exit_code": report.exit_code(),
            "totals": t,
            "seconds": report.seconds,
            "documents_per_second": (per_second * 10.0).round() / 10.0,
            "manifest": report.manifest_path,
            "report": report_path,
        }),
    );
    for why in &report.failures {
        match format {
            LogFormat::Text => eprintln!("  failed: {why}"),
            LogFormat::Json => log(
                format,
                "warning",
                "record_failed",
                why,
                serde_json::json!({}),
            ),
        }
    }
    if t.failed > 10 {
        log(
            format,
            "warning",
            "more_failures",
            &format!(
                "... and {} more failures (see report.html or documents.jsonl)",
                t.failed - 10
            ),
            serde_json::json!({"failed": t.failed}),
        );
    }
    let unmatched = &m.unmatched_suppressions;
    if !unmatched.is_empty() {
        let shown: Vec<String> = unmatched.iter().take(10).map(|u| u.to_string()).collect();
        log(
            format,
            "warning",
            "unmatched_suppressions",
            &format!(
                "{} {} of the suppression list matched nobody: {}{} (a typo leaves a customer contacted; all are in the manifest)",
                unmatched.len(),
                if unmatched.len() == 1 { "entry" } else { "entries" },
                shown.join(", "),
                if unmatched.len() > 10 { ", ..." } else { "" }
            ),
            serde_json::json!({"count": unmatched.len(), "entries": &unmatched[..unmatched.len().min(10)]}),
        );
    }
    if args.data.json {
        let summary = serde_json::json!({
            "summary_version": 1,
            "run_id": m.run_id,
            "exit_code": report.exit_code(),
            "layout": format!("{}@{}", m.layout.name, m.layout.version),
            "layout_digest": m.layout.digest,
            "as_of": m.as_of,
            "totals": m.totals,
            "seconds": report.seconds,
            "manifest": report.manifest_path,
            "report": report_path,
            "shard": m.shard.map(|s| s.to_string()),
            "resumed": report.resumed,
            "already_finished": report.already_finished,
            "unmatched_suppressions": {
                "count": unmatched.len(),
                "entries": &unmatched[..unmatched.len().min(100)],
            },
        });
        println!("{summary}");
    }
    Ok(report.exit_code())
}

/// SIGTERM and SIGINT stop the command cleanly; see `letterpress::stop`.
fn on_signals() -> Result<letterpress::stop::StopFlag, Error> {
    letterpress::stop::StopFlag::on_signals()
        .map_err(|e| Error::Usage(format!("cannot install the signal handlers: {e}")))
}

fn proof_command(layouts: &std::path::Path, args: ProofArgs) -> Result<i32, Error> {
    let report = letterpress::proof::proof(&letterpress::proof::ProofOptions {
        layouts_dir: layouts.to_path_buf(),
        layout: args.layout,
        data: args.data,
        format: args.format,
        out: args.out,
        as_of: args.as_of.unwrap_or_else(Date::today_utc),
        sample: args.sample,
        seed: args.seed,
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializes")
        );
    } else {
        for p in &report.picks {
            println!(
                "{:<20} pages {:<7} {}",
                p.record_id,
                p.proof_pages,
                p.reasons.join("; ")
            );
        }
    }
    eprintln!(
        "letterpress: proof of {}: {} records read, {} not proofed, {} picked; {} ({} pages){}",
        report.layout,
        report.records,
        report.invalid,
        report.picks.len(),
        report.pdf.display(),
        report.pages,
        report
            .html
            .as_ref()
            .map(|h| format!(" and {}", h.display()))
            .unwrap_or_default()
    );
    Ok(EXIT_OK)
}

fn diff_command(layouts: &std::path::Path, args: DiffArgs) -> Result<i32, Error> {
    let report = letterpress::diff::diff(&letterpress::diff::DiffOptions {
        layouts_dir: layouts.to_path_buf(),
        old: args.old,
        new: args.new,
        data: args.data,
        format: args.format,
        as_of: args.as_of.unwrap_or_else(Date::today_utc),
    })?;
    if let Some(out) = &args.out {
        letterpress::output::write_atomic(out, report.html().as_bytes(), false)
            .map_err(|e| Error::io(out, e))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializes")
        );
    } else {
        println!(
            "{} -> {}: {} records, {} letters change",
            report.old, report.new, report.records, report.changed
        );
        for (line, n) in report.disappearing.iter().take(10) {
            println!("  - in {n:>5} letters: {line}");
        }
        for (line, n) in report.appearing.iter().take(10) {
            println!("  + in {n:>5} letters: {line}");
        }
        for d in report.diffs.iter().filter(|d| d.error.is_some()) {
            println!("  ! {}: {}", d.record, d.error.as_deref().unwrap_or(""));
        }
    }
    Ok(EXIT_OK)
}

fn verify_command(layouts: &std::path::Path, args: VerifyArgs) -> Result<i32, Error> {
    let opts = letterpress::verify::VerifyOptions {
        run: args.run_dir,
        rerender: args.rerender,
        seed: args.seed,
        layouts_dir: layouts.to_path_buf(),
    };
    let report = letterpress::verify::verify(&opts)?;
    for p in &report.problems {
        println!("problem: {p}");
    }
    let code = if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    eprintln!(
        "letterpress: verify {}: {} files checked, {} records rendered again: {}",
        opts.run.display(),
        report.files_checked,
        report.rerendered,
        if code == EXIT_OK {
            "intact".to_string()
        } else {
            format!("{} problems", report.problems.len())
        }
    );
    if args.json {
        let mut doc = serde_json::to_value(&report).expect("serializes");
        doc["summary_version"] = 1.into();
        doc["exit_code"] = code.into();
        println!("{doc}");
    }
    Ok(code)
}

fn send_command(args: SendArgs) -> Result<i32, Error> {
    let opts = letterpress::send::SendOptions {
        run: args.run_dir,
        smtp: args.smtp,
        rate: args.rate,
        connections: args.connections,
        max_attempts: args.max_attempts,
        retry_delay: std::time::Duration::from_secs_f64(args.retry_delay.max(0.0)),
        dry_run: args.dry_run,
        ca: args.smtp_ca,
        stop: on_signals()?,
    };
    let report = letterpress::send::send(&opts)?;
    // With --json, stdout holds the JSON document only (it lists them).
    if !args.json {
        for line in &report.would_send {
            println!("would send: {line}");
        }
    }
    for e in &report.errors {
        eprintln!("  failed: {e}");
    }
    eprintln!(
        "letterpress: send {}: {} emails: {} accepted now, {} accepted before, {} failed{}",
        opts.run.display(),
        report.messages,
        report.accepted,
        report.already_accepted,
        report.failed,
        if opts.dry_run {
            format!(", {} would be sent (dry run)", report.would_send.len())
        } else {
            String::new()
        }
    );
    let code = if report.failed == 0 {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    if args.json {
        let mut doc = serde_json::to_value(&report).expect("serializes");
        doc["summary_version"] = 1.into();
        doc["exit_code"] = code.into();
        println!("{doc}");
    }
    Ok(code)
}

fn validate_command(layouts: &std::path::Path, args: ValidateArgs) -> Result<i32, Error> {
    let report = run::validate(&run::ValidateOptions {
        layouts_dir: layouts.to_path_buf(),
        layout: args.data.layout,
        data: args.data.data.clone(),
        format: args.data.format,
        as_of: args.check.as_of,
        channels: args.check.channels,
        suppress: args.check.suppress,
        print: args.check.print,
        sequence: args.check.sequence,
    })?;
    let code = if report.invalid.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    if args.data.json {
        let mut doc = serde_json::to_value(&report).expect("serializes");
        doc["summary_version"] = 1.into();
        doc["exit_code"] = code.into();
        println!("{doc}");
    } else {
        for doc in &report.invalid {
            println!("invalid: {}", doc.error.as_deref().unwrap_or(""));
        }
        println!(
            "{}: {} records checked against {}: {} valid, {} invalid",
            args.data.data.display(),
            report.records,
            report.layout,
            report.valid,
            report.invalid.len()
        );
        let unmatched = &report.unmatched_suppressions;
        if !unmatched.is_empty() {
            let shown: Vec<String> = unmatched.iter().take(10).map(|u| u.to_string()).collect();
            println!(
                "{} {} of the suppression list matched nobody: {}{}",
                unmatched.len(),
                if unmatched.len() == 1 {
                    "entry"
                } else {
                    "entries"
                },
                shown.join(", "),
                if unmatched.len() > 10 { ", ..." } else { "" }
            );
        }
    }
    Ok(code)
}

fn layouts_table(catalog: &Catalog) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".into(),
        "STATUS".into(),
        "DEFAULT".into(),
        "TITLE".into(),
    ]];
    for (name, versions) in &catalog.layouts {
        let default = catalog
            .resolve(
                &LayoutRef {
                    name: name.clone(),
                    version: None,
                },
                Date::today_utc(),
            )
            .ok()
            .map(|l| l.meta.version);
        for (v, l) in versions {
            rows.push([
                name.clone(),
                v.to_string(),
                l.meta.status.to_string(),
                if default == Some(*v) {
                    "*".into()
                } else {
                    String::new()
                },
                l.meta.title.clone(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn print_fields(fields: &[FieldSpec], depth: usize) {
    for f in fields {
        let kind = if f.kind == letterpress::schema::FieldType::List {
            format!("list of {}", f.item_type().name())
        } else {
            f.kind.name().to_string()
        };
        let req = if f.required { "required" } else { "optional" };
        let desc = f
            .description
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default();
        let indent = "  ".repeat(depth);
        let width = 24usize.saturating_sub(indent.len());
        println!("{indent}{:<width$} {kind:<16} {req}{desc}", f.name);
        print_fields(&f.fields, depth + 1);
    }
}
