//! What a run tells the person or program watching it while it goes:
//! a progress bar on a terminal, plain or JSON log lines otherwise.
//!
//! The run tells its observer about ten times a second from the thread
//! that orders the journal, which calls [`Progress::update`]. On a terminal
//! (`--progress auto` with stderr a TTY, or `--progress bar`) an indicatif
//! bar shows records done of the total, documents per second, the time
//! left and the failures so far. Anywhere else (a scheduler, CI, a pipe)
//! a line every [`LINE_EVERY`] says the same, as text or as a JSON object
//! (`--log-format json`), so logs stay readable and parseable.

use std::time::{Duration, Instant};

use super::output::{LogFormat, Out};

/// How often a progress log line is written when there is no bar.
pub const LINE_EVERY: Duration = Duration::from_secs(10);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, log lines otherwise.
    #[default]
    Auto,
    /// Always the bar.
    Bar,
    /// Always log lines.
    Lines,
    /// Nothing while the run goes.
    None,
}

/// The progress display of one run.
pub struct Progress {
    out: Out,
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    total: usize,
    start: Instant,
    last_line: Instant,
    /// Records already done when the run started (a resume).
    kept: usize,
}

impl Progress {
    /// A display for a run of `total` records, `kept` of them done before
    /// (a resume).
    pub fn new(mode: ProgressMode, out: Out, total: usize, kept: usize) -> Progress {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let bar = match mode {
            ProgressMode::Bar => true,
            ProgressMode::Auto => tty && out.format == LogFormat::Text,
            _ => false,
        };
        let lines = matches!(mode, ProgressMode::Lines) || (mode == ProgressMode::Auto && !bar);
        let bar = bar.then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:32.cyan/blue} {pos}/{len} records  {msg}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_position(kept as u64);
            b.reset_eta();
            b
        });
        let now = Instant::now();
        Progress {
            out,
            bar,
            lines,
            total,
            start: now,
            last_line: now,
            kept,
        }
    }

    /// Shows `done` records (of which `failed` documents failed).
    pub fn update(&mut self, done: usize, failed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            let secs = self.start.elapsed().as_secs_f64().max(1e-9);
            let rate = done.saturating_sub(self.kept) as f64 / secs;
            bar.set_message(if failed == 0 {
                format!("{rate:.0}/s")
            } else {
                format!("{rate:.0}/s  {failed} failed")
            });
        } else if self.lines && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            self.line(done, failed);
        }
    }

    fn line(&self, done: usize, failed: usize) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = done.saturating_sub(self.kept) as f64 / secs;
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            left as f64 / rate
        } else {
            f64::NAN
        };
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let eta_text = if eta.is_finite() {
            format!("{eta:.0} s left")
        } else {
            "time left unknown".into()
        };
        self.out.info(
            "progress",
            &format!(
                "progress: {done}/{} records ({pct:.0}%), {rate:.0} records/s, {eta_text}, {failed} failed so far",
                self.total
            ),
            serde_json::json!({
                "records_done": done,
                "records_total": self.total,
                "records_per_second": (rate * 10.0).round() / 10.0,
                "eta_seconds": if eta.is_finite() { Some(eta.round()) } else { None },
                "failed": failed,
            }),
        );
    }

    /// Ends the display (clears the bar).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
