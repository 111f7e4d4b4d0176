//! `letterpress layouts ...`: list, check, show, decide about (submit,
//! approve, reject, revoke), export and start layout versions. The
//! decisions are [`letterpress::ops::layouts`]'s; this file prints them and
//! asks the signer to confirm the words they sign.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::layout::decisions::sign::SshKeygen;
use letterpress::layout::decisions::write::Request;
use letterpress::layout::trust::Trust;
use letterpress::model::decision::{Kind, Record};
use letterpress::model::layout::{FieldSpec, FieldType, LayoutRef};
use letterpress::ops::layouts::{self, Listing, Shown};
use letterpress::util::clock::Date;

use super::args::{parse_date, AsOf, Json};
use super::output::Out;
use super::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a table of every layout version (exit 1 if any is broken).
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Print a layout version's metadata, its decisions (who submitted,
    /// approved, rejected or revoked it, when, in which words) and its
    /// field schema.
    Show {
        /// NAME (the approved version in effect on --as-of) or NAME@VERSION.
        layout: LayoutRef,
        #[command(flatten)]
        as_of: AsOf,
    },
    /// Submit a version for review, as its author: a record of every file's
    /// hash, signed with your SSH key.
    Submit {
        /// NAME@VERSION.
        layout: LayoutRef,
        #[command(flatten)]
        sign: SignArgs,
        /// A note for the reviewers, e.g. the change ticket.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Approve a submitted version for use with customers, as a reviewer:
    /// a record signed with your SSH key. It counts once the layout's
    /// policy is met (e.g. one compliance and one legal approval, never by
    /// the author).
    Approve {
        /// NAME@VERSION.
        layout: LayoutRef,
        #[command(flatten)]
        sign: SignArgs,
        /// A note, e.g. the review ticket.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        evidence: EvidenceArgs,
        /// Not a way to approve any more: a typed name is not an approval.
        #[arg(long, hide = true)]
        by: Option<String>,
    },
    /// Reject a submitted version, as a reviewer, saying why: it cannot
    /// run until its author submits it again.
    Reject {
        /// NAME@VERSION.
        layout: LayoutRef,
        #[command(flatten)]
        sign: SignArgs,
        /// Why (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        evidence: EvidenceArgs,
    },
    /// Revoke an approved version, as a reviewer, saying why: runs whose
    /// as-of date is on or after --from refuse it.
    Revoke {
        /// NAME@VERSION.
        layout: LayoutRef,
        #[command(flatten)]
        sign: SignArgs,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// The first day letters may no longer use it (default: today, UTC).
        #[arg(long, value_parser = parse_date)]
        from: Option<Date>,
    },
    /// Check every version against its decisions and the trust list: exit 1
    /// if a decision fails its checks, a chain is broken, an approved
    /// version's files changed, or a version has only an unsigned approval.
    Check {
        #[command(flatten)]
        json: Json,
    },
    /// Write an examiner's bundle of a version (a tar file): its files, its
    /// layout's signed decisions, the trust list as `allowed_signers`, the
    /// evidence, and VERIFY.txt with the commands that check every
    /// signature and file hash with ssh-keygen and sha256sum alone.
    Export {
        /// NAME@VERSION.
        layout: LayoutRef,
        /// The bundle to write (`.tar`).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        evidence: EvidenceArgs,
    },
    /// Write a working first version of a new layout (not yet submitted)
    /// with a sample data file, ready to render with --allow-draft.
    New {
        /// The layout's name: lower-case letters, digits and `-`.
        name: String,
    },
}

/// How a decision is signed.
#[derive(clap::Args)]
pub struct SignArgs {
    /// Your SSH key: a public key file whose private key is in ssh-agent
    /// or on a hardware key, or a private key file (with its .pub beside
    /// it). `ssh-keygen -Y sign` signs with it; it must be yours in the
    /// trust list.
    #[arg(long, value_name = "KEY", env = "LETTERPRESS_SIGNING_KEY")]
    key: Option<PathBuf>,
    /// The role you decide in, when you hold several that fit.
    #[arg(long)]
    role: Option<String>,
    /// Sign without asking (the words you sign are printed all the same).
    /// Without a terminal to ask on, it is required.
    #[arg(long)]
    yes: bool,
}

/// The review material a decision was taken on.
#[derive(clap::Args)]
pub struct EvidenceArgs {
    /// The proof set you reviewed: the `.json` that `letterpress proof`
    /// writes beside its PDF (its files are hashed into the record).
    #[arg(long, value_name = "PROOF.json")]
    proof: Option<PathBuf>,
    /// The comparison with the version in effect: the `.json` that
    /// `letterpress diff --out` writes beside its page.
    #[arg(long, value_name = "DIFF.json")]
    diff: Option<PathBuf>,
}

impl Command {
    pub fn json(&self) -> bool {
        match self {
            Command::List { json } | Command::Check { json } => json.json,
            _ => false,
        }
    }
}

pub fn execute(command: Command, cx: &Context) -> Result<i32, Error> {
    let trust = cx.trust.as_deref();
    match command {
        Command::List { .. } => list(cx),
        Command::Check { .. } => check(cx),
        Command::Show { layout, as_of } => {
            print_shown(&layouts::show(&cx.layouts, trust, &layout, as_of.day())?, &cx.out);
            Ok(EXIT_OK)
        }
        Command::Approve { by: Some(_), .. } => Err(Error::Usage(
            "--by is gone: a typed name is not an approval. Sign with your SSH key: letterpress layouts approve NAME@N --key ~/.ssh/id_ed25519.pub (see the book's chapter \"Approvals a regulator accepts\")".into(),
        )),
        Command::Submit { layout, sign, reason } => {
            decide(cx, &layout, &sign, request(Kind::Submitted, reason, None, None))
        }
        Command::Approve { layout, sign, reason, evidence, .. } => {
            let evidence = layouts::evidence(&cx.layouts, trust, &layout, (evidence.proof.as_deref(), evidence.diff.as_deref()), letterpress::util::clock::Date::today_utc())?;
            decide(cx, &layout, &sign, request(Kind::Approved, reason, None, evidence))
        }
        Command::Reject { layout, sign, reason, evidence } => {
            let evidence = layouts::evidence(&cx.layouts, trust, &layout, (evidence.proof.as_deref(), evidence.diff.as_deref()), letterpress::util::clock::Date::today_utc())?;
            decide(cx, &layout, &sign, request(Kind::Rejected, Some(reason), None, evidence))
        }
        Command::Revoke { layout, sign, reason, from } => {
            decide(cx, &layout, &sign, request(Kind::Revoked, Some(reason), from, None))
        }
        Command::Export { layout, out, evidence } => {
            let bundle = layouts::export(&cx.layouts, trust, &layout, &out, evidence.proof.as_deref(), evidence.diff.as_deref())?;
            cx.out.info(
                "layout_exported",
                &format!(
                    "{layout}: wrote {} ({} files); VERIFY.txt in it says how to check it with ssh-keygen and sha256sum",
                    out.display(),
                    bundle.files
                ),
                serde_json::json!({"bundle": out, "files": bundle.files}),
            );
            Ok(EXIT_OK)
        }
        Command::New { name } => new(&name, cx),
    }
}

fn request(
    kind: Kind,
    reason: Option<String>,
    from: Option<Date>,
    evidence: Option<letterpress::model::decision::Evidence>,
) -> Request {
    Request {
        kind,
        reason,
        role: None,
        from,
        evidence,
        login: None,
    }
}

/// Records a decision: shows its words, asks (on a terminal, unless
/// --yes), signs with ssh-keygen, and says where the version stands now.
fn decide(
    cx: &Context,
    layout: &LayoutRef,
    sign: &SignArgs,
    mut request: Request,
) -> Result<i32, Error> {
    request.role = sign.role.clone();
    let key = sign.key.as_ref().ok_or_else(|| {
        Error::Usage(
            "sign with your SSH key: --key KEY (or LETTERPRESS_SIGNING_KEY), a key the trust list gives you".into(),
        )
    })?;
    let signer = SshKeygen::new(key)?;
    let yes = sign.yes;
    let confirm = |r: &Record| confirm(r, yes);
    let written = layouts::decide(
        &cx.layouts,
        cx.trust.as_deref(),
        layout,
        &request,
        &signer,
        &confirm,
    )?;
    if let Some(w) = Trust::find(cx.trust.as_deref())?.and_then(|t| t.demo_warning()) {
        cx.out
            .log("warning", "demo_trust", &w, serde_json::json!({}));
    }
    let r = &written.record;
    let now = layouts::show(&cx.layouts, cx.trust.as_deref(), layout, Date::today_utc())
        .map(|s| s.standing.describe())
        .unwrap_or_else(|e| e.to_string());
    cx.out.info(
        "layout_decided",
        &format!(
            "{layout}: {} by {} ({}), recorded in {}\n{layout} now: {now}",
            r.decision, r.signer.name, r.signer.role, written.path.display()
        ),
        serde_json::json!({"layout": layout.to_string(), "decision": r.decision, "record": written.path, "signer": r.signer.id}),
    );
    Ok(EXIT_OK)
}

/// Prints the words about to be signed and asks for a yes, on a terminal.
fn confirm(r: &Record, yes: bool) -> bool {
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "You are signing record {} of {}:\n  {}",
        r.seq, r.layout, r.meaning
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(err, "  Reason: {reason}");
    }
    if yes {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        let _ = writeln!(
            err,
            "letterpress: not signed: add --yes to sign without a terminal to ask on"
        );
        return false;
    }
    let _ = write!(err, "Sign it? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

fn list(cx: &Context) -> Result<i32, Error> {
    let out = &cx.out;
    let listing = layouts::list(&cx.layouts, cx.trust.as_deref(), Date::today_utc())?;
    print_table(&listing, out);
    for (dir, why) in &listing.broken {
        out.log(
            "warning",
            "broken_layout",
            &format!("broken: {}: {why}", dir.display()),
            serde_json::json!({"folder": dir}),
        );
    }
    let code = if listing.broken.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    Ok(out.summary(code, &listing))
}

fn check(cx: &Context) -> Result<i32, Error> {
    let out = &cx.out;
    let listing = layouts::list(&cx.layouts, cx.trust.as_deref(), Date::today_utc())?;
    let Some((trust, sha256)) = &listing.trust else {
        return Err(Error::Usage(
            "no trust list to check the decisions against: give one with --trust or LETTERPRESS_TRUST (or put trust.yaml here)".into(),
        ));
    };
    out.print(format!(
        "trust list {} (SHA-256 {})",
        trust.display(),
        &sha256[..16]
    ));
    for l in &listing.versions {
        out.print(format!(
            "{:<24} {:<13} {:<32} {}{}",
            format!("{}@{}", l.name, l.version),
            l.status,
            l.effective,
            if l.ok { "" } else { "PROBLEM: " },
            l.standing
        ));
        for w in &l.warnings {
            out.log(
                "warning",
                "layout_warning",
                &format!("{}@{}: {w}", l.name, l.version),
                serde_json::json!({"layout": format!("{}@{}", l.name, l.version)}),
            );
        }
    }
    for (dir, why) in &listing.broken {
        out.print(format!("broken: {}: {why}", dir.display()));
    }
    for why in &listing.decisions {
        out.print(format!("PROBLEM: {why}"));
    }
    let code = if listing.problems() == 0 {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    Ok(out.summary(code, &listing))
}

fn new(name: &str, cx: &Context) -> Result<i32, Error> {
    for f in layouts::new(&cx.layouts, name)? {
        println!("{}", f.display());
    }
    let data = cx.layouts.join(name).join("sample-data.csv");
    cx.out.info(
        "layout_created",
        &format!(
            "wrote {name}@1 (a draft). Render it now:\n  letterpress run --layout {name}@1 --data {} --out out/{name} --allow-draft\nthen change texts.yaml, letter.typ and the email templates, look at the result, and submit it for review with your SSH key:\n  letterpress layouts submit {name}@1 --key ~/.ssh/id_ed25519.pub",
            data.display()
        ),
        serde_json::json!({"layout": format!("{name}@1"), "sample_data": data}),
    );
    Ok(EXIT_OK)
}

fn print_table(listing: &Listing, out: &Out) {
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".into(),
        "STATUS".into(),
        "DEFAULT".into(),
        "TITLE".into(),
    ]];
    for l in &listing.versions {
        rows.push([
            l.name.clone(),
            l.version.to_string(),
            l.status.clone(),
            if l.default { "*".into() } else { String::new() },
            l.title.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.print(cells.join("  ").trim_end());
    }
}

fn print_shown(shown: &Shown, out: &Out) {
    let Shown {
        layout,
        standing,
        digest,
        day,
        trust,
    } = shown;
    if let Some(w) = trust.as_ref().and_then(|t| t.demo_warning()) {
        out.log("warning", "demo_trust", &w, serde_json::json!({}));
    }
    let m = &layout.meta;
    println!("layout:      {}", layout.id());
    println!("title:       {}", m.title);
    println!("standing:    {}", standing.describe());
    print_decisions(shown);
    println!(
        "effective:   {}{}",
        m.effective(),
        if layout.in_effect(*day) {
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
    print_channels(m);
    println!("digest:      {digest}");
    println!("fields:");
    print_fields(&m.fields, 1);
}

/// Every decision about the version, oldest first: number, time, who in
/// which role, the words they signed, why, what they reviewed, and why a
/// record does not count.
fn print_decisions(shown: &Shown) {
    let review = &shown.standing.review;
    let mine: Vec<_> = review
        .entries
        .iter()
        .filter(|e| e.record.version == shown.layout.meta.version)
        .collect();
    if mine.is_empty() {
        return;
    }
    println!(
        "decisions:   (signed records in {}, oldest first)",
        review.dir.display()
    );
    for e in mine {
        let r = &e.record;
        println!(
            "  {:>4}  {}  {:<9} {} <{}>, {}; key {}",
            r.seq, r.at, r.decision, r.signer.name, r.signer.id, r.signer.role, r.key
        );
        println!("        \"{}\"", r.meaning);
        if let Some(reason) = &r.reason {
            println!("        reason: {reason}");
        }
        if let Some(ev) = &r.evidence {
            if let Some(p) = &ev.proof {
                println!(
                    "        reviewed the proof of {} of {} records ({}), wording: {}",
                    p.picks.len(),
                    p.records,
                    p.picks
                        .iter()
                        .map(|k| k.record.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    p.wording.join("; ")
                );
            }
            if let Some(d) = &ev.diff {
                println!(
                    "        reviewed the diff against {}: {} of {} letters change",
                    d.against, d.changed, d.records
                );
            }
        }
        if let Some(why) = &e.problem {
            println!("        DOES NOT COUNT: {why}");
        }
    }
}

/// The large-print and email lines of `layouts show`.
fn print_channels(m: &letterpress::model::layout::LayoutMeta) {
    if let Some(field) = &m.accessibility_field {
        let large = &m.large_print;
        println!(
            "formats:     field {field}: standard, large-print (at least {} pt, sizes × {}, at most {} pages)",
            large.min_size,
            large.scale,
            large.page_limit(m.page.max_pages)
        );
    }
    if let Some(e) = &m.email {
        println!("email:       from {}, to field {}", e.from, e.to_field);
        println!("             subject {}", e.subject);
        if e.attach.is_some() {
            let protection = match &e.encrypt {
                Some(enc) => format!(
                    ", protected by the password in field {}",
                    enc.password_field
                ),
                None => String::new(),
            };
            println!(
                "             attaches the letter{protection}; at most {} bytes",
                e.max_bytes
            );
        }
    }
}

fn print_fields(fields: &[FieldSpec], depth: usize) {
    for f in fields {
        let kind = if f.kind == FieldType::List {
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
