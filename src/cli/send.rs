//! `letterpress send`: a finished run's emails to an SMTP relay.

use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::ops::send::{send, SendOptions};
use letterpress::util::text::count;

use super::args::{on_signals, parse_rate, ContactsDb, Json, LockLease, RunFolder};
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunFolder,
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
    /// Record each accepted and refused message in the contact history too.
    #[command(flatten)]
    contacts: ContactsDb,
    #[command(flatten)]
    lease: LockLease,
    #[command(flatten)]
    pub json: Json,
}

pub fn execute(args: Args, cx: &Context) -> Result<i32, Error> {
    let mut opts = SendOptions::new(args.run.path(), args.smtp);
    opts.rate = args.rate;
    opts.connections = args.connections;
    opts.max_attempts = args.max_attempts;
    opts.retry_delay = std::time::Duration::from_secs_f64(args.retry_delay.max(0.0));
    opts.dry_run = args.dry_run;
    opts.ca = args.smtp_ca;
    opts.contacts = args.contacts.contacts;
    opts.stop = on_signals()?;
    opts.lock = args.lease.terms();
    let report = send(&opts)?;
    let out = &cx.out;
    for line in &report.would_send {
        out.print(format!("would send: {line}"));
    }
    for w in &report.warnings {
        out.log("warning", "lock_taken_over", w, serde_json::json!({}));
    }
    for e in &report.errors {
        out.item("failed", "message_failed", e);
    }
    out.info(
        "sent",
        &format!(
            "send {}: {}: {} accepted now, {} accepted before, {} failed{}",
            opts.run.display(),
            count(report.messages, "email", "emails"),
            report.accepted,
            report.already_accepted,
            report.failed,
            if opts.dry_run {
                format!(", {} would be sent (dry run)", report.would_send.len())
            } else {
                String::new()
            }
        ),
        serde_json::json!({
            "messages": report.messages,
            "accepted": report.accepted,
            "already_accepted": report.already_accepted,
            "failed": report.failed,
        }),
    );
    let code = if report.failed == 0 {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    };
    Ok(out.summary(code, &report))
}
