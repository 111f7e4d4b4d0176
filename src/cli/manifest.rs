//! `letterpress manifest merge`: the shards of a run into one manifest.

use std::path::PathBuf;

use letterpress::error::{Error, EXIT_OK, EXIT_PARTIAL};
use letterpress::ops::merge::merge;
use letterpress::util::text::count;

use super::args::Json;
use super::Context;

#[derive(clap::Subcommand)]
pub enum Command {
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
        #[command(flatten)]
        json: Json,
    },
}

impl Command {
    pub fn json(&self) -> bool {
        match self {
            Command::Merge { json, .. } => json.json,
        }
    }
}

pub fn execute(command: Command, cx: &Context) -> Result<i32, Error> {
    let Command::Merge { folders, out, .. } = command;
    let command: Vec<String> = std::env::args().collect();
    let merged = merge(&folders, out.as_deref(), &command)?;
    let t = &merged.totals;
    cx.out.info(
        "merged",
        &format!(
            "merged {}: {}, {} ({} rendered, {} failed, {} suppressed, {} routed elsewhere{}); manifest {}",
            count(merged.shards, "shard", "shards"),
            count(t.records, "record", "records"),
            count(t.documents, "document", "documents"),
            t.rendered,
            t.failed,
            t.suppressed,
            t.routed_elsewhere,
            super::run::held(t.held),
            merged.manifest.display()
        ),
        serde_json::json!({"shards": merged.shards, "totals": t, "manifest": merged.manifest}),
    );
    let code = if t.failed == 0 { EXIT_OK } else { EXIT_PARTIAL };
    Ok(cx.out.summary(code, &merged))
}
