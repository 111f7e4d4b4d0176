//! `letterpress layouts ...`: list, check, show, approve and start layout
//! versions. The decisions are [`letterpress::ops::layouts`]'s; this file
//! prints them.

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::model::layout::{FieldSpec, FieldType, LayoutRef};
use letterpress::ops::layouts::{self, Listing, Shown};
use letterpress::util::clock::Date;
use letterpress::util::text::count;

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
    /// Print a layout version's metadata, approval and field schema.
    Show {
        /// NAME (the approved version in effect on --as-of) or NAME@VERSION.
        layout: LayoutRef,
        #[command(flatten)]
        as_of: AsOf,
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
    Check {
        #[command(flatten)]
        json: Json,
    },
    /// Write a working first version of a new layout (draft) with a sample
    /// data file, ready to render with --allow-draft.
    New {
        /// The layout's name: lower-case letters, digits and `-`.
        name: String,
    },
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
    match command {
        Command::List { .. } => list(cx),
        Command::Check { .. } => check(cx),
        Command::Show { layout, as_of } => {
            print_shown(&layouts::show(&cx.layouts, &layout, as_of.day())?);
            Ok(EXIT_OK)
        }
        Command::Approve {
            layout,
            by,
            note,
            date,
        } => {
            let day = date.unwrap_or_else(Date::today_utc);
            let (a, file) = layouts::approve(&cx.layouts, &layout, &by, note.as_deref(), day)?;
            println!(
                "{layout}: approved by {} on {}; digest {}; {} recorded in {}",
                a.approved_by,
                a.approved_on,
                a.digest,
                count(a.files.len(), "file", "files"),
                file.display()
            );
            Ok(EXIT_OK)
        }
        Command::New { name } => new(&name, cx),
    }
}

fn list(cx: &Context) -> Result<i32, Error> {
    let out = &cx.out;
    let listing = layouts::list(&cx.layouts, Date::today_utc())?;
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
    let listing = layouts::list(&cx.layouts, Date::today_utc())?;
    for l in &listing.versions {
        out.print(format!(
            "{:<24} {:<9} {:<32} {}{}",
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
            "wrote {name}@1 (a draft). Render it now:\n  letterpress run --layout {name}@1 --data {} --out out/{name} --allow-draft\nthen change texts.yaml, letter.typ and the email templates, look at the result, and ask for approval:\n  letterpress layouts approve {name}@1 --by \"Your Name\"",
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

fn print_shown(shown: &Shown) {
    let Shown {
        layout,
        standing,
        digest,
        day,
    } = shown;
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
