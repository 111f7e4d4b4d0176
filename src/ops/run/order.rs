//! The mailing order of a print run, planned before rendering, and the
//! print files made from the letters after it (see [`crate::output::print`]).

use std::collections::HashMap;
use std::path::Path;

use crate::check::record::{Checked, Checker, Pieces, Plan, Planned};
use crate::check::route::Decision;
use crate::error::{Error, Result};
use crate::input::{field_text, Input};
use crate::layout::catalog::Layout;
use crate::manifest::journal;
use crate::model::manifest::DocumentsFile;
use crate::model::print::{Piece, PrintOutput};
use crate::model::vocab::{Channel, DocStatus};
use crate::output::print::Letter;
use crate::util::stop::StopFlag;

/// Numbers the records that get a letter in mailing order: by the presort
/// tool's sequence file when given (ids in it first, in its order; any
/// other letter after them in the layout's order), else by the layout's
/// `print.sort` key, then the record id.
pub fn mailing_order(
    plan: Plan,
    input: &Input,
    sequence: Option<&Path>,
    stop: &StopFlag,
) -> Result<Pieces> {
    if !plan.channels.contains(&Channel::Pdf) {
        return Err(Error::Usage(
            "--print needs the pdf channel: add pdf to --channels".into(),
        ));
    }
    let settings = plan.layout.meta.print.clone().unwrap_or_default();
    let presorted = presorted(sequence)?;
    let mut checker = Checker::new(plan, input.format);
    let mut letters = Vec::new();
    for raw in input.records()? {
        if let Some(signal) = stop.requested() {
            return Err(super::stopped(signal, 0, 0, None));
        }
        let Checked::Ready(job) = checker.check(raw?) else {
            continue;
        };
        let prints = job
            .route
            .decisions
            .iter()
            .any(|(c, d)| *c == Channel::Pdf && matches!(d, Decision::Render(_)));
        if prints {
            let key: Vec<String> = settings
                .sort
                .iter()
                .map(|f| field_text(&job.record, f))
                .collect();
            let postcode = field_text(&job.record, &settings.postcode_field);
            let zip = settings
                .imb
                .as_ref()
                .map(|i| field_text(&job.record, &i.zip_field));
            let first = presorted.get(&job.id).copied().unwrap_or(usize::MAX);
            let (inserts, divert) = crate::output::print::chosen(&settings, &job.record);
            letters.push((
                first, key, job.id, job.index, postcode, zip, inserts, divert,
            ));
        }
    }
    letters.sort();
    Ok(letters
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, _, index, postcode, zip, inserts, divert))| {
            let sequence = i as u32 + 1;
            let imb = settings
                .imb
                .as_ref()
                .zip(zip)
                .map(|(s, zip)| s.barcode(sequence, &zip));
            (
                index,
                Planned {
                    sequence,
                    postcode,
                    imb,
                    inserts,
                    divert,
                },
            )
        })
        .collect())
}

/// A presort tool's sequence file: record id → position.
fn presorted(sequence: Option<&Path>) -> Result<HashMap<String, usize>> {
    let Some(path) = sequence else {
        return Ok(HashMap::new());
    };
    Ok(std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("sequence file `{}`: {e}", path.display())))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, id)| (id.to_owned(), i))
        .collect())
}

/// Combines the run's letters into print files and a job ticket, and links
/// each letter's entry in the journal to its piece (rewriting the journal).
pub fn print_files(
    layout: &Layout,
    out: &Path,
    folder: &Path,
    pieces: &Pieces,
    run_id: &str,
) -> Result<(PrintOutput, DocumentsFile)> {
    let settings = layout.meta.print.clone().unwrap_or_default();
    let mut letters = Vec::new();
    for d in journal::documents(folder)? {
        let d = d?;
        if d.channel != Channel::Pdf.name() || d.status != DocStatus::Rendered {
            continue;
        }
        let Some(planned) = pieces.get(&d.index) else {
            continue;
        };
        let barcode = match &planned.imb {
            Some(Ok((payload, _))) => payload.clone(),
            _ => String::new(),
        };
        if let (Some(record_id), Some(path)) = (d.record_id, d.path) {
            letters.push(Letter {
                barcode,
                sequence: planned.sequence,
                record_id,
                path,
                pages: d.pages,
                postcode: planned.postcode.clone(),
                envelope: None,
                inserts: planned.inserts.clone(),
                divert: planned.divert,
                weight: None,
            });
        }
    }
    let (placed, output) = crate::output::print::produce(out, &settings, letters, run_id)
        .map_err(|e| Error::Output(format!("print files: {e}")))?;
    let mut by_id: HashMap<String, Piece> = placed
        .into_iter()
        .map(|p| (p.record_id.clone(), p))
        .collect();
    let entry = journal::rewrite(folder, |d| {
        if d.channel == Channel::Pdf.name() {
            d.piece = d.record_id.as_deref().and_then(|id| by_id.remove(id));
        }
    })?;
    Ok((output, entry))
}
