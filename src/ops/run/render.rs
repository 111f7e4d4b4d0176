//! Rendering one checked record on each of its channels and writing its
//! documents: the work the run's pool does (see [`super::pool`]).

use std::time::Duration;

use crate::check::record::Job;
use crate::check::route::Decision;
use crate::model::file::FileEntry;
use crate::model::manifest::Document;
use crate::model::vocab::{Channel, DocStatus};
use crate::output::documents::Place;
use crate::render::email::EmailRenderer;
use crate::render::pdf::Renderer;
use crate::util::clock::Date;

/// Evict Typst's memoization cache after this many records: memory stays
/// flat (without eviction it grows about 1 MB a letter), and evicting
/// after every record would cost a quarter of the throughput. Measured on
/// welcome letters with `--print`, every 25 instead of every 50: peak RSS
/// 87 instead of 113 MB at 2,000 letters (102 instead of 119 MB at
/// 20,000), CPU ratio 0.98 (0.96 to 1.12 over 5 pairs: no cost seen);
/// every 10 costs 10% more CPU on letters.
pub const EVICT_EVERY: usize = 25;

/// Evict sooner, and return the freed memory to the system, when the
/// process's resident memory is this much above its floor (its least right
/// after memory was returned: what the run needs besides the cache): a
/// multi-page statement with a long table leaves far more in the cache than
/// a letter (some 5 MB against well under 1 MB), which a count of records
/// cannot tell apart. 2,000 statements (2 workers): peak RSS 265 to 280 MB
/// evicting every 25 records, 198 MB with this limit as well, the same
/// CPU; 2,000 welcome letters: 120 instead of 151 MB, CPU ratio 1.02
/// (0.96 to 1.07 over 8 pairs). With 40 MB: 218 MB for the statements.
const EVICT_GROWTH: u64 = 24 << 20;

/// At least this many records between two evictions, whatever the memory
/// says (evicting after every record costs a quarter of the throughput).
const EVICT_AT_LEAST: usize = 3;

/// Return the allocator's free memory to the system after this many
/// evictions: Typst's results are freed on many threads, and the memory
/// they held stays with the allocator otherwise (20,000 welcome letters:
/// peak RSS 127 MB without, 105 MB with; after every eviction it cost 5%
/// more CPU, after every 8th no cost measured: CPU ratio 0.98, 0.80 to
/// 1.15 over 5 pairs).
const TRIM_EVERY: usize = 8;

/// When Typst's memoised results are evicted: after [`EVICT_EVERY`]
/// records, or sooner when memory grew by [`EVICT_GROWTH`]; shared by the
/// workers of a run.
#[derive(Debug, Default)]
pub struct Tidy(std::sync::Mutex<TidyState>);

#[derive(Debug, Default)]
struct TidyState {
    /// Records since the last eviction.
    since: usize,
    /// Evictions so far.
    evictions: usize,
    /// The least resident memory right after memory was returned to the
    /// system: what the run needs besides the cache.
    floor: Option<u64>,
}

impl Tidy {
    /// Counts a record laid out and, when it is time, evicts Typst's
    /// memoised results and returns freed memory to the system, so memory
    /// stays flat: every [`EVICT_EVERY`] records (memory returned at the
    /// first eviction and every [`TRIM_EVERY`]th), or as soon as memory is
    /// [`EVICT_GROWTH`] above its floor (memory returned too).
    pub fn after_record(&self) {
        let mut s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.since += 1;
        let grown = s.since >= EVICT_AT_LEAST
            && matches!(
                (crate::util::mem::resident_bytes(), s.floor),
                (Some(now), Some(floor)) if now > floor + EVICT_GROWTH
            );
        if s.since < EVICT_EVERY && !grown {
            return;
        }
        typst::comemo::evict(1);
        s.since = 0;
        s.evictions += 1;
        if grown || s.evictions % TRIM_EVERY == 1 {
            crate::util::mem::trim();
            if let Some(now) = crate::util::mem::resident_bytes() {
                s.floor = Some(s.floor.map_or(now, |f| f.min(now)));
            }
        }
    }
}

/// The renderers and the place of one run, shared by all workers.
pub struct Stage {
    /// The letter's renderer, when the run has the pdf or the web channel.
    pub pdf: Option<Renderer>,
    /// The email's renderer, when the run has the email channel.
    pub email: Option<EmailRenderer>,
    /// Whether the run makes web letters (with the letter's renderer).
    pub web: bool,
    /// Where the documents go.
    pub place: Place,
    /// The run's date.
    pub as_of: Date,
    /// When to evict Typst's cache.
    pub tidy: Tidy,
}

/// What a worker hands back for a record: its entries, and a print
/// letter's laid-out pages when they are kept.
pub struct Outcome {
    /// The record's entries, one per channel.
    pub docs: Vec<Document>,
    /// The laid-out pages of its letter, in a print run.
    pub laid: Option<super::pages::Laid>,
}

/// A record on its way to a worker: to render, or already failed.
pub enum Item {
    /// Checked and routed: render it.
    Job(Box<Job>),
    /// Failed its checks: these are its entries.
    Failed(Vec<Document>),
}

/// What the watchdog keeps of a record being rendered, to fail it if it
/// overruns the time limit.
pub struct Pending {
    index: usize,
    line: u64,
    id: String,
    channels: Vec<Channel>,
}

/// Why a document was not made: the record's own data or the template
/// (the document fails), or the environment (the run stops).
enum Failure {
    Record(String),
    Environment(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Record(why)
    }
}

impl super::pool::Work for Stage {
    type In = Item;
    type Out = Outcome;
    type Pending = Pending;

    fn pending(&self, item: &Item) -> Option<Pending> {
        match item {
            Item::Job(job) => Some(Pending {
                index: job.index,
                line: job.line,
                id: job.id.clone(),
                channels: job.route.decisions.iter().map(|(c, _)| *c).collect(),
            }),
            Item::Failed(_) => None,
        }
    }

    fn work(&self, item: Item) -> Result<Outcome, String> {
        let job = match item {
            Item::Failed(docs) => return Ok(Outcome { docs, laid: None }),
            Item::Job(job) => job,
        };
        let done = self.render(*job, &self.place);
        self.tidy.after_record();
        done
    }

    fn overran(&self, job: Pending, limit: Duration) -> Outcome {
        let why = format!(
            "rendering took longer than the limit of {} s (--doc-timeout); the template may loop or grow without end on this record's data",
            limit.as_secs_f64()
        );
        let docs = job
            .channels
            .iter()
            .map(|c| Document::failed(job.index, job.line, Some(&job.id), *c, &why))
            .collect();
        Outcome { docs, laid: None }
    }
}

/// Where a rendered record's files go: the run folder ([`Place`]), or
/// memory for a document served on demand.
pub trait Put {
    /// Keeps `bytes` as `rel` (relative to the output folder); the file's
    /// entry, or the environment error that stops the work.
    fn put(&self, rel: &str, bytes: &[u8]) -> Result<FileEntry, String>;
}

impl Put for Place {
    fn put(&self, rel: &str, bytes: &[u8]) -> Result<FileEntry, String> {
        self.write(rel, bytes)
    }
}

impl Stage {
    /// Renders one record on each channel its route says, its files to
    /// `out`. The error is an environment error (a file that cannot be
    /// written), which stops the run.
    pub fn render(&self, job: Job, out: &dyn Put) -> Result<Outcome, String> {
        let mut docs = Vec::with_capacity(job.route.decisions.len());
        // The letter as the pdf channel rendered it, for an email that
        // carries it, and its pages for the print files.
        let mut letter: Option<Vec<u8>> = None;
        let mut laid = None;
        for (channel, decision) in &job.route.decisions {
            let (index, line, id) = (job.index, job.line, Some(job.id.as_str()));
            let doc = match decision {
                Decision::Suppress(why) => {
                    Document::skipped(index, line, id, *channel, DocStatus::Suppressed, why)
                }
                Decision::Elsewhere(why) => {
                    Document::skipped(index, line, id, *channel, DocStatus::RoutedElsewhere, why)
                }
                Decision::Hold(why) => {
                    Document::skipped(index, line, id, *channel, DocStatus::Held, why)
                }
                Decision::Fail(why) => Document::failed(index, line, id, *channel, why),
                Decision::Render(note) => {
                    let result = match channel {
                        Channel::Pdf => self.pdf(&job, (&mut letter, &mut laid), out),
                        Channel::Email => self.email(&job, &mut letter, out),
                        Channel::Web => self.web(&job, out),
                    };
                    match result {
                        Ok(mut doc) => {
                            doc.note = note.clone();
                            doc
                        }
                        Err(Failure::Record(why)) => {
                            Document::failed(index, line, id, *channel, &why)
                        }
                        Err(Failure::Environment(why)) => return Err(why),
                    }
                }
            };
            docs.push(doc);
        }
        link_attachment(&mut docs);
        Ok(Outcome { docs, laid })
    }

    /// The letter of `job` on the pdf channel; keeps its bytes in `letter`
    /// when they are what an email attaches (no print marks), and, for a
    /// mail piece of a print run, its pages in `laid` (see [`super::pages`]).
    fn pdf(
        &self,
        job: &Job,
        (letter, laid): (&mut Option<Vec<u8>>, &mut Option<super::pages::Laid>),
        out: &dyn Put,
    ) -> Result<Document, Failure> {
        let renderer = self.pdf.as_ref().expect("pdf channel prepared");
        let bars = match &job.imb {
            Some(Ok(postal)) => Some(postal),
            Some(Err(why)) => return Err(Failure::Record(why.clone())),
            None => None,
        };
        let keep = job.sequence.is_some();
        let mut pdf =
            renderer.render_piece(&job.id, &job.record, job.locale, (job.sequence, bars), keep)?;
        let file = out
            .put(&format!("pdf/{}.pdf", job.stem), &pdf.pdf)
            .map_err(Failure::Environment)?;
        if let (Some(doc), Some(sequence)) = (pdf.laid_out.take(), job.sequence) {
            *laid = Some(super::pages::Laid { sequence, doc });
        }
        let mut doc = job.rendered(Channel::Pdf, file);
        doc.pages = pdf.pages;
        if job.sequence.is_none() && self.attaches_letter() {
            *letter = Some(pdf.pdf);
        }
        Ok(doc)
    }

    fn attaches_letter(&self) -> bool {
        self.email
            .as_ref()
            .is_some_and(EmailRenderer::attaches_letter)
    }

    fn web(&self, job: &Job, out: &dyn Put) -> Result<Document, Failure> {
        let renderer = self.pdf.as_ref().expect("web channel prepared");
        let web = renderer.render_web(&job.record, job.locale)?;
        let file = out
            .put(&format!("web/{}.html", job.stem), web.html.as_bytes())
            .map_err(Failure::Environment)?;
        Ok(job.rendered(Channel::Web, file))
    }

    fn email(
        &self,
        job: &Job,
        letter: &mut Option<Vec<u8>>,
        out: &dyn Put,
    ) -> Result<Document, Failure> {
        let renderer = self.email.as_ref().expect("email channel prepared");
        let to = job
            .route
            .to
            .as_ref()
            .expect("routed to email with an address");
        if renderer.attaches_letter() && letter.is_none() {
            // The letter itself, without a print run's marks.
            let pdf = self.pdf.as_ref().expect("the letter's renderer prepared");
            *letter = Some(pdf.render(&job.id, &job.record, job.locale)?.pdf);
        }
        let email = renderer.render(
            &job.id,
            &job.record,
            to,
            job.locale,
            self.as_of,
            letter.as_deref(),
        )?;
        let write = |ext: &str, bytes: &[u8]| {
            out.put(&format!("email/{}.{ext}", job.stem), bytes)
                .map_err(Failure::Environment)
        };
        let files = vec![
            write("html", email.html.as_bytes())?,
            write("txt", email.text.as_bytes())?,
        ];
        let mut doc = job.rendered(Channel::Email, write("eml", &email.eml)?);
        doc.to = Some(email.to);
        doc.subject = Some(email.subject);
        doc.message_id = Some(email.message_id);
        doc.attachment = email.attachment;
        doc.files = files;
        Ok(doc)
    }
}

/// Links an email's attached letter to the letter entry of the same record,
/// when the pdf channel rendered one.
fn link_attachment(docs: &mut [Document]) {
    let letter = docs
        .iter()
        .find(|d| d.channel == Channel::Pdf.name() && d.status == DocStatus::Rendered)
        .and_then(|d| d.path.clone());
    for doc in docs.iter_mut() {
        if let Some(attachment) = &mut doc.attachment {
            attachment.letter = letter.clone();
        }
    }
}
