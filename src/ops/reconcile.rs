//! `reconcile`: closes the loop with a file-based inserter. The inserter's
//! result file says what became of each mail piece; every piece's outcome
//! goes into the append-only pieces journal ([`PIECES_FILE`], which `verify`
//! checks), and the pieces that did not make it into their envelope get an
//! automatic reprint (see [`crate::ops::reprint`]): the same letters, piece
//! numbers and envelope classes, with their own print file, ticket and Mail
//! Run Data File.
//!
//! # The result file
//! Either a CSV with a header row holding `piece_id` and `outcome` (other
//! columns are ignored): the piece id as the Mail Run Data File gives it
//! (`<run id>|<piece>`, or a whole sheet code), the outcome one of
//! `inserted`, `diverted`, `damaged`, `missing`. Or a plain list of scanned
//! DataMatrix contents, one a line, as a camera system writes it: a piece
//! whose every sheet was seen is inserted, one with sheets missing is
//! damaged. A camera that reads the finished piece's Royal Mail Mailmark
//! through the window (its 4-state content, or the 2D code's `JGB ...`)
//! sees the whole piece in its envelope: that line makes the piece
//! inserted. The number of sheets is the run's own (its journal), never the
//! scanned code's: a code that gives another count (`1/1` for a piece of
//! three sheets, `0/0`), a sheet beyond the piece, or a bare piece id
//! without a sheet is a problem named with its line, and counts for no
//! sheet.
//!
//! A result file whose last line has no line end was most likely cut off
//! while it was copied; every piece after the cut would count as missing
//! and be printed again. Such a file is refused (exit 2) unless the
//! operator says it is complete (`--complete`).
//!
//! # One at a time
//! `reconcile` holds the run folder's lock while it works (as `reprint`
//! does): result files reconciled at once (one per print file, say) are
//! taken one after the other with `--lock-wait`, each reprint gets its own
//! number, and the pieces journal (a chained log, see
//! [`crate::util::jsonl`]) is appended by one process at a time.
//!
//! # Which pieces a file speaks for
//! A result file speaks for the jobs (print files, or reprints) of the open
//! pieces it names: an open piece of such a job that the file does not name
//! is missing. So one file per print file works, and so does the result of
//! a reprint, which closes the reprinted pieces and leaves the rest alone.
//! A piece is open until it is inserted, or diverted when its Mail Run Data
//! File asked for that (a hand insert: diverted as planned, not reprinted).
//!
//! Reconciling a file twice (the same SHA-256) changes nothing. Named for a
//! person, and exit 1: pieces to reprint, a piece seen twice (in the file,
//! or already inserted before: a customer may get two letters), a piece of
//! another run, one this run never made, and a line that cannot be read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result, EXIT_OK, EXIT_PARTIAL};
use crate::model::print::{mailmark_key, Outcome, Piece, PieceEvent, PIECES_FILE};
use crate::ops::reprint::{reprint_locked, reprints, Reprint};
use crate::util::clock::now_rfc3339;
use crate::util::digest::sha256_hex;
use crate::util::jsonl;
use crate::util::text::count;

/// What to reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// The finished print run's folder.
    pub run: PathBuf,
    /// The inserter's result file.
    pub inserter: PathBuf,
    /// Write the reprint of the pieces that need one (default true).
    pub reprint: bool,
    /// The operator says the result file is complete although its last
    /// line has no line end (default false: such a file is refused).
    pub complete: bool,
    /// How the run folder's lock is held and waited for.
    pub lock: crate::util::lock::LockTerms,
}

impl ReconcileOptions {
    /// Reconciles `inserter` against the run in `run`, writing the reprint.
    pub fn new(run: impl Into<PathBuf>, inserter: impl Into<PathBuf>) -> ReconcileOptions {
        ReconcileOptions {
            run: run.into(),
            inserter: inserter.into(),
            reprint: true,
            complete: false,
            lock: crate::util::lock::LockTerms::default(),
        }
    }
}

/// What a reconcile found and did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReconcileReport {
    /// The result file, as given.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The file was reconciled before: nothing was recorded again.
    pub already_reconciled: bool,
    /// The open pieces the file speaks for.
    pub expected: usize,
    /// Pieces by outcome, as this file told them.
    pub outcomes: BTreeMap<&'static str, Vec<u32>>,
    /// Diverted pieces whose Mail Run Data File asked for it.
    pub diverted_as_planned: Vec<u32>,
    /// What needs a person, each line naming the piece and the file's line.
    pub problems: Vec<String>,
    /// The reprint written for the pieces that did not make it.
    pub reprint: Option<Reprint>,
    /// Pieces of the run reported but not closed after this file: they
    /// wait for their reprint's result.
    pub open: Vec<u32>,
    /// Pieces of the run no result file has named yet.
    pub unreported: usize,
}

impl ReconcileReport {
    /// 0 when every piece the file speaks for is closed and nothing needs a
    /// person, else 1.
    /// A file reconciled before: 1 while pieces still wait for a reprint.
    pub fn exit_code(&self) -> i32 {
        let waiting = match self.already_reconciled {
            true => !self.open.is_empty(),
            false => self.needs_reprint() > 0,
        };
        if self.problems.is_empty() && !waiting {
            EXIT_OK
        } else {
            EXIT_PARTIAL
        }
    }

    fn needs_reprint(&self) -> usize {
        ["diverted", "damaged", "missing"]
            .iter()
            .filter_map(|o| self.outcomes.get(o))
            .map(Vec::len)
            .sum::<usize>()
            - self.diverted_as_planned.len()
    }
}

/// A piece as the run and its reprints know it.
struct Known<'a> {
    piece: &'a Piece,
    /// Its latest job: the print file, or the last reprint that holds it.
    job: String,
    /// Closed by an earlier file: that file.
    closed_by: Option<String>,
}

/// What the file says of one piece, and on which line.
struct Told {
    outcome: Outcome,
    line: usize,
}

/// Reconciles an inserter's result file; see the module docs.
pub fn reconcile(opts: &ReconcileOptions) -> Result<ReconcileReport> {
    let run = &opts.run;
    let (text, sha256) = read_text(&opts.inserter, opts.complete)?;
    let _lock = crate::manifest::folder::lock(run, "reconcile", opts.lock)?;
    let (m, documents) = crate::ops::reprint::print_run(run, "reconcile")?;
    // A household's piece is in the journal once per letter.
    let mut pieces: Vec<&Piece> = documents.iter().filter_map(|d| d.piece.as_ref()).collect();
    pieces.sort_by_key(|p| p.sequence);
    pieces.dedup_by_key(|p| p.sequence);
    let pieces_path = run.join(PIECES_FILE);
    let (mut log, events): (_, Vec<PieceEvent>) =
        jsonl::Chained::open(&pieces_path, &jsonl::origin(PIECES_FILE, &m.run_id))?;
    let known = pieces_known(&pieces, &events, &reprints(run, &m.run_id)?);
    let mut report = ReconcileReport {
        file: opts.inserter.display().to_string(),
        sha256: sha256.clone(),
        already_reconciled: events.iter().any(|e| e.source_sha256 == sha256),
        expected: 0,
        outcomes: BTreeMap::new(),
        diverted_as_planned: Vec::new(),
        problems: Vec::new(),
        reprint: None,
        open: Vec::new(),
        unreported: 0,
    };
    if report.already_reconciled {
        (report.open, report.unreported) = open(&known, &events);
        return Ok(report);
    }
    let told = read_result(&text, &m.run_id, &known, &mut report.problems);
    let (recorded, again) = expected(&known, &told, &mut report);
    if opts.reprint && !again.is_empty() {
        report.reprint = Some(reprint_locked(run, &m, &documents, &again, &[])?);
    }
    let at = now_rfc3339();
    let number = report.reprint.as_ref().map(|r| r.reprint);
    let lines: Vec<PieceEvent> = recorded
        .iter()
        .map(|(n, outcome, line)| PieceEvent {
            piece: *n,
            outcome: *outcome,
            source: report.file.clone(),
            source_sha256: sha256.clone(),
            line: *line,
            reprint: number.filter(|_| again.binary_search(n).is_ok()), // sorted
            at: at.clone(),
        })
        .collect();
    for e in &lines {
        log.push(e).map_err(|err| Error::io(&pieces_path, err))?;
    }
    log.sync().map_err(|e| Error::io(&pieces_path, e))?;
    let all: Vec<PieceEvent> = events.into_iter().chain(lines).collect();
    let done = reprints(run, &m.run_id)?;
    (report.open, report.unreported) = open(&pieces_known(&pieces, &all, &done), &all);
    // In the order of the file's lines.
    report.problems.sort_by_key(|p| {
        p.strip_prefix("line ")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
    });
    crate::manifest::report::refresh_pieces(run, &pieces, &all)?;
    Ok(report)
}

/// A piece's outcome as this file told it, and the line (none: not named).
type Recorded = (u32, Outcome, Option<usize>);

/// The result file's text and SHA-256; a file whose last line has no
/// line end is refused unless `complete` (see the module docs).
fn read_text(path: &std::path::Path, complete: bool) -> Result<(String, String)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !complete && !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let lines = bytes.split(|&b| b == b'\n').count();
        return Err(Error::Input(format!(
            "{}: its last line (line {lines}) has no line end: the file looks cut off, and every piece after the cut would count as missing and be printed again; nothing was recorded. Get the whole file, or pass --complete if it is whole",
            path.display()
        )));
    }
    let sha256 = sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::Input(format!(
            "{}: not UTF-8 text (save the result file as UTF-8)",
            path.display()
        ))
    })?;
    Ok((text, sha256))
}

/// The open pieces of the jobs the file speaks for, each with what the file
/// told of it (missing when nothing), counted into `report`; and those of
/// them to print again.
fn expected(
    known: &BTreeMap<u32, Known>,
    told: &BTreeMap<u32, Told>,
    report: &mut ReconcileReport,
) -> (Vec<Recorded>, Vec<u32>) {
    let jobs: BTreeSet<&str> = told
        .keys()
        .filter_map(|n| known.get(n))
        .filter(|k| k.closed_by.is_none())
        .map(|k| k.job.as_str())
        .collect();
    let (mut recorded, mut again) = (Vec::new(), Vec::new());
    for (n, k) in known {
        if k.closed_by.is_some() || !jobs.contains(k.job.as_str()) {
            continue;
        }
        report.expected += 1;
        let (outcome, line) = match told.get(n) {
            Some(t) => (t.outcome, Some(t.line)),
            None => (Outcome::Missing, None),
        };
        report.outcomes.entry(outcome.name()).or_default().push(*n);
        match outcome.closes(k.piece) {
            true if outcome == Outcome::Diverted => report.diverted_as_planned.push(*n),
            true => {}
            false => again.push(*n),
        }
        recorded.push((*n, outcome, line));
    }
    (recorded, again)
}

/// Every piece of the run by number, with its latest job and whether an
/// earlier file closed it.
fn pieces_known<'a>(
    pieces: &[&'a Piece],
    events: &[PieceEvent],
    reprints: &[Reprint],
) -> BTreeMap<u32, Known<'a>> {
    let by_number: HashMap<u32, &Piece> = pieces.iter().map(|p| (p.sequence, *p)).collect();
    let mut closed: HashMap<u32, &str> = HashMap::new();
    for e in events {
        if by_number.get(&e.piece).is_some_and(|p| e.closes(p)) {
            closed.insert(e.piece, &e.source);
        }
    }
    // The last reprint of each piece.
    let mut reprinted: HashMap<u32, usize> = HashMap::new();
    for r in reprints {
        for n in &r.pieces {
            reprinted.insert(*n, r.reprint);
        }
    }
    pieces
        .iter()
        .map(|p| {
            let job = reprinted
                .get(&p.sequence)
                .map_or_else(|| p.print_file.clone(), |r| format!("reprint {r}"));
            let k = Known {
                piece: p,
                job,
                closed_by: closed.get(&p.sequence).map(|s| s.to_string()),
            };
            (p.sequence, k)
        })
        .collect()
}

/// The pieces a file reported that none has closed yet, and how many no
/// file has named.
fn open(known: &BTreeMap<u32, Known>, events: &[PieceEvent]) -> (Vec<u32>, usize) {
    let reported: BTreeSet<u32> = events.iter().map(|e| e.piece).collect();
    let unclosed = known.iter().filter(|(_, k)| k.closed_by.is_none());
    let (open, unreported): (Vec<_>, Vec<_>) = unclosed.partition(|(n, _)| reported.contains(n));
    (
        open.into_iter().map(|(n, _)| *n).collect(),
        unreported.len(),
    )
}

/// A piece id or sheet code as read.
#[derive(Debug, PartialEq)]
struct Code<'a> {
    run: &'a str,
    piece: u32,
    /// Sheet i of n, for a sheet's code.
    sheet: Option<(usize, usize)>,
}

/// A piece id or sheet code: `<run id>|<piece>[|<sheet>/<sheets>[|...]]`.
fn parse_code(s: &str) -> Option<Code<'_>> {
    let mut parts = s.trim().split('|');
    let run = parts.next().filter(|r| !r.is_empty())?;
    let piece = parts.next()?.trim().parse().ok()?;
    let sheet = match parts.next() {
        Some(s) => {
            let (i, n) = s.split_once('/')?;
            Some((i.trim().parse().ok()?, n.trim().parse().ok()?))
        }
        None => None,
    };
    Some(Code { run, piece, sheet })
}

/// What the result file says of each piece of this run; what cannot be
/// taken goes to `problems`.
fn read_result(
    text: &str,
    run_id: &str,
    known: &BTreeMap<u32, Known>,
    problems: &mut Vec<String>,
) -> BTreeMap<u32, Told> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let lower = header.to_ascii_lowercase();
    let rows = if lower.contains("piece_id") && lower.contains(',') {
        csv_rows(text, problems)
    } else {
        let sheets = |run: &str, n: u32| {
            (run == run_id)
                .then(|| known.get(&n).map(|k| k.piece.sheets))
                .flatten()
        };
        // The pieces by their Mailmark, for a camera at the envelopes.
        let by_mailmark: HashMap<String, u32> = known
            .iter()
            .filter_map(|(n, k)| mailmark_key(&k.piece.barcode).map(|key| (key, *n)))
            .collect();
        let mailmark = |code: &str| {
            let key = mailmark_key(code)?;
            Some(by_mailmark.get(&key).map_or_else(
                || format!("{key} (no piece of this run)"),
                |n| format!("{run_id}|{n}"),
            ))
        };
        scan_rows(text, (&sheets, &mailmark), problems)
    };
    let mut told: BTreeMap<u32, Told> = BTreeMap::new();
    for (line, code, outcome) in rows {
        let Some(Code { run, piece: n, .. }) = parse_code(&code) else {
            problems.push(format!(
                "line {line}: `{code}` is not a piece id (`<run id>|<piece>`)"
            ));
            continue;
        };
        if run != run_id {
            problems.push(format!(
                "line {line}: piece {n} of run {run}, not of this run ({run_id})"
            ));
            continue;
        }
        let Some(k) = known.get(&n) else {
            problems.push(format!("line {line}: piece {n} was never made by this run"));
            continue;
        };
        if let Some(source) = &k.closed_by {
            if outcome == Outcome::Inserted {
                problems.push(format!(
                    "line {line}: piece {n} (record {}) was inserted before ({source}): seen twice, the customer may get two letters",
                    k.piece.record_id
                ));
            } else {
                problems.push(format!(
                    "line {line}: piece {n} is {} here but was closed before ({source})",
                    outcome.name()
                ));
            }
            continue;
        }
        match told.get(&n) {
            Some(first) => problems.push(format!(
                "line {line}: piece {n} (record {}) is named again (first on line {}): seen twice",
                k.piece.record_id, first.line
            )),
            None => {
                told.insert(n, Told { outcome, line });
            }
        }
    }
    told
}

/// The rows of a CSV result file: line, piece id, outcome.
fn csv_rows(text: &str, problems: &mut Vec<String>) -> Vec<(usize, String, Outcome)> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).collect(),
        Err(e) => {
            problems.push(format!("line 1: {e}"));
            return Vec::new();
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(id_col), Some(outcome_col)) = (col("piece_id"), col("outcome")) else {
        problems.push("line 1: the header needs the columns piece_id and outcome".into());
        return Vec::new();
    };
    let mut rows = Vec::new();
    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let id = record.get(id_col).unwrap_or("").to_owned();
        let word = record.get(outcome_col).unwrap_or("").to_ascii_lowercase();
        match Outcome::ALL.iter().find(|o| o.name() == word) {
            Some(o) => rows.push((line, id, *o)),
            None => problems.push(format!(
                "line {line}: outcome `{word}` of `{id}` is not one of inserted, diverted, damaged, missing"
            )),
        }
    }
    rows
}

/// A piece's sheets as the run recorded them, by run id and piece.
type Sheets<'a> = &'a dyn Fn(&str, u32) -> Option<usize>;

/// The piece id a scanned Mailmark stands for (or what to report).
type ByMailmark<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The rows of a list of scanned sheet codes: a piece whose every sheet
/// was seen is inserted; one with a sheet missing, damaged. `sheets` gives
/// a piece's sheets as the run recorded them (none: not a piece of this
/// run, which the caller reports). A sheet seen twice, a code whose count
/// disagrees with the run's or a code without a sheet is a problem of its
/// own (see the module docs). A Mailmark (`mailmark` gives its piece id)
/// makes its whole piece inserted.
fn scan_rows(
    text: &str,
    (sheets, mailmark): (Sheets, ByMailmark),
    problems: &mut Vec<String>,
) -> Vec<(usize, String, Outcome)> {
    // Piece id → first line, sheets seen, sheets of the piece.
    let mut pieces: BTreeMap<String, (usize, BTreeSet<usize>, usize)> = BTreeMap::new();
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (line, code) = (i + 1, raw.trim());
        if code.is_empty() {
            continue;
        }
        // A Mailmark read on the finished piece: all of it is enveloped.
        if let Some(id) = mailmark(code) {
            rows.push((line, id, Outcome::Inserted));
            continue;
        }
        let Some(Code {
            run,
            piece: n,
            sheet,
        }) = parse_code(code)
        else {
            rows.push((line, code.to_owned(), Outcome::Inserted));
            continue;
        };
        let id = format!("{run}|{n}");
        let Some(recorded) = sheets(run, n) else {
            rows.push((line, id, Outcome::Inserted)); // reported by the caller
            continue;
        };
        let entry = pieces
            .entry(id)
            .or_insert((line, BTreeSet::new(), recorded));
        let why = match sheet {
            None => Some(format!(
                "`{code}` names piece {n} without a sheet; a camera list must give each sheet (`<run id>|{n}|<sheet>/{recorded}`): it counts for no sheet"
            )),
            Some((i, of)) if of != recorded || i == 0 || i > recorded => Some(format!(
                "`{code}` says sheet {i}/{of}, but piece {n} has {} in the run's record: it counts for no sheet",
                count(recorded, "sheet", "sheets")
            )),
            Some((i, of)) if !entry.1.insert(i) => Some(format!(
                "sheet {i}/{of} of piece {n} scanned twice: seen twice"
            )),
            Some(_) => None,
        };
        if let Some(why) = why {
            problems.push(format!("line {line}: {why}"));
        }
    }
    for (id, (line, seen, sheets)) in pieces {
        let whole = (1..=sheets).all(|s| seen.contains(&s));
        rows.push((
            line,
            id,
            if whole {
                Outcome::Inserted
            } else {
                Outcome::Damaged
            },
        ));
    }
    rows.sort_by_key(|r| r.0);
    rows
}

/// The pieces of a report line, e.g. `3, 7, 12`.
pub fn list(pieces: &[u32]) -> String {
    pieces
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_run_piece_and_sheet() {
        let code = |run, piece, sheet| Some(Code { run, piece, sheet });
        assert_eq!(parse_code("R1|7"), code("R1", 7, None));
        assert_eq!(parse_code(" R1|7|2/3|B1+B2 "), code("R1", 7, Some((2, 3))));
        assert_eq!(parse_code("7"), None);
        assert_eq!(parse_code("R1|x"), None);
    }

    #[test]
    fn scans_make_whole_pieces_inserted_and_partial_ones_damaged() {
        let mut problems = Vec::new();
        let sheets = |run: &str, n: u32| (run == "R").then_some(if n == 2 { 1 } else { 2 });
        let rows = scan_rows(
            "R|1|1/2\nR|2|1/1\nR|1|2/2\nR|3|1/2\nR|2|1/1\n\n",
            (&sheets, &|_| None),
            &mut problems,
        );
        let got: Vec<(usize, &str, Outcome)> = rows
            .iter()
            .map(|(l, id, o)| (*l, id.as_str(), *o))
            .collect();
        assert_eq!(
            got,
            [
                (1, "R|1", Outcome::Inserted),
                (2, "R|2", Outcome::Inserted),
                (4, "R|3", Outcome::Damaged)
            ]
        );
        assert_eq!(
            problems,
            ["line 5: sheet 1/1 of piece 2 scanned twice: seen twice"]
        );
    }

    #[test]
    fn the_runs_sheet_count_wins_over_the_scanned_one() {
        let mut problems = Vec::new();
        // Piece 7 has three sheets in the run's record.
        let sheets = |_: &str, n: u32| (n == 7).then_some(3);
        let rows = scan_rows(
            "R|7|1/1\nR|7|0/0\nR|7\nR|7|4/3\n",
            (&sheets, &|_| None),
            &mut problems,
        );
        let got: Vec<Outcome> = rows.iter().map(|r| r.2).collect();
        assert_eq!(got, [Outcome::Damaged], "never inserted");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems[0].starts_with("line 1: `R|7|1/1` says sheet 1/1, but piece 7 has 3 sheets")
        );
        assert!(problems[2].contains("without a sheet"), "{problems:?}");
    }
}
