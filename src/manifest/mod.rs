//! Stage 5: the audit record. The [`journal`] of document entries, written
//! in input order while a run goes and read back on resume; the run
//! [`folder`]'s state file; reading a finished run's `manifest.json`
//! (below); and the [`report`] people read. The types are in
//! [`crate::model::manifest`]; the schema is in the book, `docs/src/reference/manifest.md`.

pub mod folder;
pub mod journal;
pub mod report;
pub mod served;

use crate::model::manifest::{content_digest, Manifest, MANIFEST_VERSION};

/// Reads a manifest file.
pub fn load(path: &std::path::Path) -> crate::error::Result<Manifest> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        crate::error::Error::Input(format!(
            "{}: not a letterpress manifest of version {MANIFEST_VERSION}: {e}",
            path.display()
        ))
    })
}

/// Reads the manifest of a finished run for `command` (`verify`, `send`,
/// ...), and tells whether its content still matches its
/// `manifest_digest` (false: edited after the run). The errors say why the
/// file is not a manifest at all.
pub fn read_checked(
    path: &std::path::Path,
    command: &str,
) -> crate::error::Result<(Manifest, bool)> {
    let bytes = std::fs::read(path).map_err(|e| {
        crate::error::Error::Input(format!(
            "{}: {e} ({command} needs the folder of a finished run)",
            path.display()
        ))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| crate::error::Error::Input(format!("{}: not JSON: {e}", path.display())))?;
    let intact = value["manifest_digest"].as_str() == Some(content_digest(&value).as_str());
    let manifest = serde_json::from_value(value).map_err(|e| {
        crate::error::Error::Input(format!(
            "{}: not a letterpress manifest: {e}",
            path.display()
        ))
    })?;
    Ok((manifest, intact))
}

/// The manifest of the finished run in `run`, for `command`, which acts on
/// it: a manifest edited after the run (its digest) is refused, and so is
/// one shard of a sharded run.
pub fn read_intact(run: &std::path::Path, command: &str) -> crate::error::Result<Manifest> {
    let path = run.join(crate::model::manifest::MANIFEST_FILE);
    let (manifest, intact) = read_checked(&path, command)?;
    let refuse = |why: &str| {
        crate::error::Error::Usage(format!("{command} refuses {}: {why}", run.display()))
    };
    if !intact {
        return Err(refuse(
            "its manifest was edited after the run (its content does not match its manifest_digest; `letterpress verify` says more)",
        ));
    }
    if manifest.shard.is_some() {
        return Err(refuse(
            "it holds one shard of a sharded run; use the merged run",
        ));
    }
    Ok(manifest)
}
