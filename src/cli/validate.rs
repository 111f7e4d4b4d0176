//! `letterpress validate`: the run's checks, nothing rendered.

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::ops::validate::{validate, ValidateOptions};
use letterpress::util::text::count;

use super::args::{CheckArgs, ControlTotal, Json, LayoutArg, Records};
use super::run::entries;
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    layout: LayoutArg,
    #[command(flatten)]
    records: Records,
    #[command(flatten)]
    total: ControlTotal,
    #[command(flatten)]
    pub json: Json,
    #[command(flatten)]
    check: CheckArgs,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let query = args.records.query()?;
    let mut opts = ValidateOptions::new(args.layout.layout, args.records.data);
    opts.layouts_dir = cx.layouts.clone();
    opts.trust = cx.trust.clone();
    opts.format = args.records.format;
    opts.query = query;
    opts.expect_records = args.total.expect_records;
    opts.as_of = args.check.as_of.as_of;
    opts.channels = args.check.channels;
    opts.suppress = args.check.suppress;
    opts.address_key = args.check.contacts.key()?;
    opts.contacts = args.check.contacts.contacts;
    opts.print = args.check.print;
    opts.sequence = args.check.sequence;
    opts.household = args.check.household;
    opts.allow_draft = args.check.allow_draft;
    let report = validate(&opts)?;
    let code = if report.invalid.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    let out = &cx.out;
    for w in &report.warnings {
        out.log("warning", "validate_warning", w, serde_json::json!({}));
    }
    for line in &report.history {
        out.print(format!("history: {line}"));
    }
    for doc in &report.invalid {
        out.print(format!("invalid: {}", doc.error.as_deref().unwrap_or("")));
    }
    let withheld = match &opts.suppress {
        Some(list) => format!(
            "; the suppression list {} will withhold {}",
            list.display(),
            count(report.suppressed, "record", "records")
        ),
        None => String::new(),
    };
    out.print(format!(
        "{}: {} checked against {}: {} valid, {} invalid{withheld}",
        opts.data.display(),
        count(report.records, "record", "records"),
        report.layout,
        report.valid,
        report.invalid.len()
    ));
    let unmatched = &report.unmatched_suppressions;
    if !unmatched.is_empty() {
        let shown: Vec<String> = unmatched.iter().take(10).map(|u| u.to_string()).collect();
        out.print(format!(
            "{} of the suppression list matched nobody: {}{}",
            entries(unmatched.len()),
            shown.join(", "),
            if unmatched.len() > 10 { ", ..." } else { "" }
        ));
    }
    Ok(out.summary(code, &report))
}
