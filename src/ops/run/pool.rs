//! A pool of worker threads that does items in parallel and hands the
//! results back in input order, with a time limit per item, for work that
//! cannot be interrupted once begun (a Typst compilation). It knows nothing
//! of letters: [`Work`] says how to do one item, a [`Sink`] takes the
//! results.
//!
//! A reader thread takes items from the input and hands them to the workers
//! in numbered batches over a bounded channel (`2 × jobs` batches), so the
//! reorder window stays bounded; the calling thread puts finished batches
//! back in order for the sink. Workers are plain threads with their own
//! stack size (rayon stays free for the work's own parallelism).
//!
//! The calling thread is also the watchdog: an item that takes longer than
//! the limit gets [`Work::overran`]'s result, its worker is abandoned (the
//! thread finishes in the background and its result is thrown away, or ends
//! with the process) and a new worker takes over the rest of its batch, so
//! the pool keeps its pace and ends on time.
//!
//! Two ways to stop early:
//! - an error from [`Work::work`] or from the sink (the environment: a disk
//!   that is full) *halts* the pool: the batches before it are finished
//!   (also those a worker is still on) and reach the sink, none after;
//!   workers finish the item in hand of a later batch and take no more;
//!   the error is returned;
//! - the stop flag (a signal) *stops* it: the reader takes no more items,
//!   the batches handed out finish and reach the sink; items still working
//!   after the grace period are dropped (not given to the sink) and the
//!   pool returns [`Ended::Stopped`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::util::stop::StopFlag;

/// How one item is done.
pub trait Work: Send + Sync + 'static {
    /// An item of the input.
    type In: Send + 'static;
    /// Its result.
    type Out: Send + 'static;
    /// What the watchdog keeps of an item while it is worked on, to give it
    /// a result if it overruns.
    type Pending: Send + 'static;

    /// What to keep of `item` while it is worked on; `None` for an item
    /// that cannot overrun (nothing to do), which is then not timed.
    fn pending(&self, item: &Self::In) -> Option<Self::Pending>;

    /// Does the item. An error is not the item's: it halts the pool.
    fn work(&self, item: Self::In) -> std::result::Result<Self::Out, String>;

    /// The result of an item that took longer than `limit`.
    fn overran(&self, pending: Self::Pending, limit: Duration) -> Self::Out;
}

/// Where the results go, in input order.
pub trait Sink<Out> {
    /// Takes the results of the next batch. An error halts the pool.
    fn take(&mut self, outs: Vec<Out>) -> Result<()>;

    /// Called about every 100 ms, with or without new results (to keep a
    /// journal durable, to show progress).
    fn tick(&mut self) -> Result<()>;
}

/// How a pool run ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every item's result reached the sink.
    All,
    /// A signal stopped it; the results of the items read before it (but
    /// those dropped after the grace period) reached the sink.
    Stopped(i32),
}

/// The shape of a pool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Worker threads.
    pub jobs: usize,
    /// The longest one item may take.
    pub limit: Duration,
    /// Items handed to a worker at a time.
    pub batch: usize,
    /// Each worker's stack size in bytes.
    pub stack: usize,
    /// How long items in hand may go on after a stop was asked for.
    pub grace: Duration,
}

/// A worker's state, shared with the watchdog.
struct Slot<W: Work> {
    /// The batch in hand: its number, the results so far, the items left,
    /// and the item being worked on with its start.
    busy: Option<Busy<W>>,
    /// Set by the watchdog when the worker overran: it must drop its work.
    abandoned: bool,
}

impl<W: Work> Slot<W> {
    /// A slot for a new worker, with nothing in hand.
    fn shared() -> Shared<W> {
        Arc::new(Mutex::new(Slot {
            busy: None,
            abandoned: false,
        }))
    }
}

struct Busy<W: Work> {
    seq: u64,
    outs: Vec<W::Out>,
    rest: VecDeque<W::In>,
    current: Option<(Instant, Option<W::Pending>)>,
}

type Shared<W> = Arc<Mutex<Slot<W>>>;

/// A finished batch: its results, or the error that halted it.
type Done<Out> = (u64, std::result::Result<Vec<Out>, String>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the pool halted: the first batch that no longer reaches the sink
/// (a worker's error halts it at its own batch, so that the batches before
/// it are finished; the sink's error or a stop's grace running out, at 0).
#[derive(Clone)]
struct Halt(Arc<AtomicU64>);

impl Halt {
    fn new() -> Self {
        Halt(Arc::new(AtomicU64::new(u64::MAX)))
    }

    /// Halts the pool at batch `seq`, or at an earlier one already set.
    fn at(&self, seq: u64) {
        self.0.fetch_min(seq, Ordering::SeqCst);
    }

    fn halted(&self) -> bool {
        self.0.load(Ordering::SeqCst) != u64::MAX
    }

    /// Whether batch `seq` is to be dropped, not done.
    fn drops(&self, seq: u64) -> bool {
        seq >= self.0.load(Ordering::SeqCst)
    }
}

/// A numbered batch of inputs, as the workers take them.
type Batches<In> = Arc<Mutex<mpsc::Receiver<(u64, Vec<In>)>>>;

/// What the workers share besides their slots.
struct Lanes<W: Work> {
    rx: Batches<W::In>,
    tx: mpsc::Sender<Done<W::Out>>,
    halt: Halt,
}

impl<W: Work> Clone for Lanes<W> {
    fn clone(&self) -> Self {
        Lanes {
            rx: self.rx.clone(),
            tx: self.tx.clone(),
            halt: self.halt.clone(),
        }
    }
}

/// One worker: takes batches until the input is done, or until the
/// watchdog abandons it. A worker that replaces an abandoned one first
/// finishes the batch its slot already holds. After a halt it finishes a
/// batch before the halt and drops the others (it drains the batches, so
/// the reader never blocks).
fn worker<W: Work>(work: Arc<W>, slot: Shared<W>, lanes: Lanes<W>) {
    let drops = |seq: u64| lanes.halt.drops(seq);
    loop {
        let item = {
            let mut s = lock(&slot);
            if s.abandoned {
                return;
            }
            if s.busy.as_ref().is_some_and(|b| drops(b.seq)) {
                s.busy = None;
            }
            match s.busy.as_mut() {
                Some(busy) => match busy.rest.pop_front() {
                    Some(item) => {
                        busy.current = Some((Instant::now(), work.pending(&item)));
                        item
                    }
                    None => {
                        let busy = s.busy.take().expect("busy");
                        if lanes.tx.send((busy.seq, Ok(busy.outs))).is_err() {
                            return;
                        }
                        continue;
                    }
                },
                None => {
                    drop(s);
                    let next = lock(&lanes.rx).recv();
                    let Ok((seq, items)) = next else { return };
                    if !drops(seq) {
                        lock(&slot).busy = Some(Busy {
                            seq,
                            outs: Vec::with_capacity(items.len()),
                            rest: items.into(),
                            current: None,
                        });
                    }
                    continue;
                }
            }
        };
        let result = work.work(item);
        let mut s = lock(&slot);
        if s.abandoned {
            return;
        }
        let busy = s.busy.as_mut().expect("busy while working");
        busy.current = None;
        match result {
            Ok(out) => busy.outs.push(out),
            Err(why) => {
                let seq = busy.seq;
                lanes.halt.at(seq);
                s.busy = None;
                // Sent while the slot is locked: the watchdog sees the
                // worker idle only once the error is on its way.
                let _ = lanes.tx.send((seq, Err(why)));
            }
        }
    }
}

/// The reader: sends the input in numbered batches to the workers until it
/// ends, a halt, or a stop signal (returned); stores the number of batches
/// sent in `total` when done. An `Err` item ends it with that error.
fn read<In, I>(
    input: I,
    batch_size: usize,
    job_tx: &mpsc::SyncSender<(u64, Vec<In>)>,
    halt: &Halt,
    stop: &StopFlag,
    total: &AtomicUsize,
) -> Result<Option<i32>>
where
    I: Iterator<Item = Result<In>>,
{
    let mut batch = Vec::with_capacity(batch_size);
    let (mut seq, mut stopped) = (0u64, None);
    let result = (|| {
        for item in input {
            if halt.halted() {
                return Ok(());
            }
            if let Some(signal) = stop.requested() {
                stopped = Some(signal);
                break;
            }
            batch.push(item?);
            if batch.len() == batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                if job_tx.send((seq, full)).is_err() {
                    return Ok(());
                }
                seq += 1;
            }
        }
        if !batch.is_empty() && job_tx.send((seq, batch)).is_ok() {
            seq += 1;
        }
        Ok(())
    })();
    total.store(seq as usize, Ordering::SeqCst);
    result.map(|()| stopped)
}

/// Abandons every worker that holds a batch (the grace after a stop signal
/// ran out): what it renders is dropped, not journaled.
fn abandon_busy<W: Work>(slots: &[Shared<W>]) {
    for slot in slots {
        let mut s = lock(slot);
        if s.busy.is_some() {
            s.abandoned = true;
        }
    }
}

/// Whether, after a halt, no worker is in the middle of an item or holds
/// a batch before the halt.
fn idle<W: Work>(slots: &[Shared<W>], halt: &Halt) -> bool {
    slots.iter().all(|slot| {
        let s = lock(slot);
        s.abandoned
            || s.busy
                .as_ref()
                .is_none_or(|b| b.current.is_none() && halt.drops(b.seq))
    })
}

/// When a signal asked to stop, and whether its grace ran out, after
/// which the items in hand are abandoned.
#[derive(Default)]
struct Stopping {
    asked: Option<(i32, Instant)>,
    cut_short: bool,
}

impl Stopping {
    /// True once, when the grace after a stop request has just run out.
    fn grace_over(&mut self, stop: &StopFlag, grace: Duration) -> bool {
        if self.asked.is_none() {
            self.asked = stop.requested().map(|sig| (sig, Instant::now()));
        }
        match self.asked {
            Some((_, at)) if at.elapsed() > grace && !self.cut_short => {
                self.cut_short = true;
                true
            }
            _ => false,
        }
    }

    /// The signal that cut work short, if the grace ran out.
    fn cut_by(&self) -> Option<i32> {
        self.asked
            .filter(|_| self.cut_short)
            .map(|(signal, _)| signal)
    }
}

/// Finished batches put back in input order for the sink, and the first
/// error, after which nothing more reaches the sink.
struct InOrder<Out> {
    waiting: BTreeMap<u64, std::result::Result<Vec<Out>, String>>,
    next: u64,
    failure: Option<Error>,
}

impl<Out> InOrder<Out> {
    fn new() -> Self {
        InOrder {
            waiting: BTreeMap::new(),
            next: 0,
            failure: None,
        }
    }

    fn take(
        &mut self,
        seq: u64,
        batch: std::result::Result<Vec<Out>, String>,
        sink: &mut dyn Sink<Out>,
        halt: &Halt,
    ) {
        self.waiting.insert(seq, batch);
        while let Some(batch) = self.waiting.remove(&self.next) {
            if self.failure.is_none() {
                let done = match batch {
                    Ok(outs) => sink.take(outs),
                    Err(why) => Err(Error::Environment(why)),
                };
                self.fail(done, halt);
            }
            self.next += 1;
        }
    }

    /// How the pool ended: a failure first, then a stop that cut work
    /// short, then a batch never answered, else a stop between batches or
    /// all done.
    fn ended(self, cut_by: Option<i32>, stopped: Option<i32>, total: usize) -> Result<Ended> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        if let Some(signal) = cut_by {
            return Ok(Ended::Stopped(signal));
        }
        if !self.waiting.is_empty() || (self.next as usize) < total {
            return Err(Error::Output(
                "a worker stopped before its batch was done".into(),
            ));
        }
        Ok(stopped.map_or(Ended::All, Ended::Stopped))
    }

    fn fail(&mut self, done: Result<()>, halt: &Halt) {
        if let Err(e) = done {
            halt.at(0);
            self.failure = Some(e);
        }
    }
}

impl Pool {
    /// Does every item of `input` with `work` and hands the results to
    /// `sink` in input order; see the module docs. An `Err` item of the
    /// input stops the pool with that error (a file that cannot be read on).
    pub fn run<W, I>(
        &self,
        work: Arc<W>,
        input: I,
        sink: &mut dyn Sink<W::Out>,
        stop: &StopFlag,
    ) -> Result<Ended>
    where
        W: Work,
        I: Iterator<Item = Result<W::In>> + Send,
    {
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Vec<W::In>)>(self.jobs * 2);
        let (done_tx, done_rx) = mpsc::channel::<Done<W::Out>>();
        let lanes = Lanes::<W> {
            rx: Arc::new(Mutex::new(job_rx)),
            tx: done_tx,
            halt: Halt::new(),
        };
        let spawn = |slot: Shared<W>| {
            let (work, lanes) = (work.clone(), lanes.clone());
            std::thread::Builder::new()
                .name("worker".into())
                .stack_size(self.stack)
                .spawn(move || worker(work, slot, lanes))
                .map(drop)
                .map_err(|e| Error::Output(format!("cannot start a worker thread: {e}")))
        };
        let mut slots = (0..self.jobs)
            .map(|_| {
                let slot = Slot::shared();
                spawn(slot.clone()).map(|()| slot)
            })
            .collect::<Result<Vec<Shared<W>>>>()?;
        // Batches the reader sent, once it has finished.
        let total = AtomicUsize::new(usize::MAX);
        let halt = lanes.halt.clone();
        std::thread::scope(|scope| -> Result<Ended> {
            let (total, halt) = (&total, &halt);
            let batch_size = self.batch;
            let reader = scope.spawn(move || read(input, batch_size, &job_tx, halt, stop, total));
            let mut order = InOrder::new();
            let mut stopping = Stopping::default();
            let tick = Duration::from_millis(100).min(self.limit);
            loop {
                match done_rx.recv_timeout(tick) {
                    Ok((seq, outs)) => order.take(seq, outs, sink, halt),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if order.failure.is_none() {
                    let ticked = sink.tick();
                    order.fail(ticked, halt);
                }
                if order.next as usize == total.load(Ordering::SeqCst) {
                    break;
                }
                if stopping.grace_over(stop, self.grace) {
                    halt.at(0);
                    abandon_busy(&slots);
                }
                // After a halt, wait for the batches before it and the items
                // in hand to finish, so nothing is written after the pool
                // returns.
                if halt.halted() && idle(&slots, halt) && reader.is_finished() {
                    break;
                }
                if reader.is_finished() && total.load(Ordering::SeqCst) == usize::MAX {
                    break; // the reader failed; its error is below
                }
                self.watch(&mut slots, &spawn, work.as_ref())?;
            }
            let stopped = reader.join().expect("the reader thread does not panic")?;
            // A halted worker sent its error before its slot went idle.
            while let Ok((seq, outs)) = done_rx.try_recv() {
                order.take(seq, outs, sink, halt);
            }
            order.ended(stopping.cut_by(), stopped, total.load(Ordering::SeqCst))
        })
    }

    /// The watchdog: abandons each worker whose item overran the limit,
    /// gives that item its overrun result and starts a new worker on the
    /// rest of the batch.
    fn watch<W: Work>(
        &self,
        slots: &mut [Shared<W>],
        spawn: &dyn Fn(Shared<W>) -> Result<()>,
        work: &W,
    ) -> Result<()> {
        for slot in slots.iter_mut() {
            let mut s = lock(slot);
            let overran = s
                .busy
                .as_ref()
                .and_then(|b| b.current.as_ref())
                .is_some_and(|(start, pending)| pending.is_some() && start.elapsed() > self.limit);
            if !overran {
                continue;
            }
            s.abandoned = true;
            let mut busy = s.busy.take().expect("overran while busy");
            drop(s);
            let (_, pending) = busy.current.take().expect("overran while working");
            busy.outs
                .push(work.overran(pending.expect("timed"), self.limit));
            let fresh = Arc::new(Mutex::new(Slot {
                busy: Some(busy),
                abandoned: false,
            }));
            spawn(fresh.clone())?;
            *slot = fresh;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles numbers; 7 spins until the process ends, 1000 takes 300 ms,
    /// a negative number is an environment error.
    struct Double;

    impl Work for Double {
        type In = i64;
        type Out = i64;
        type Pending = i64;

        fn pending(&self, item: &i64) -> Option<i64> {
            Some(*item)
        }

        fn work(&self, item: i64) -> std::result::Result<i64, String> {
            if item == 7 {
                loop {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            if item < 0 {
                return Err(format!("cannot do {item}"));
            }
            if item == 1000 {
                std::thread::sleep(Duration::from_millis(300));
            }
            // Later items finish first, so order has to be restored.
            std::thread::sleep(Duration::from_micros(((50 - item % 50) * 20) as u64));
            Ok(item * 2)
        }

        fn overran(&self, pending: i64, _: Duration) -> i64 {
            -pending
        }
    }

    #[derive(Default)]
    struct Collect(Vec<i64>, usize);

    impl Sink<i64> for Collect {
        fn take(&mut self, outs: Vec<i64>) -> Result<()> {
            self.0.extend(outs);
            Ok(())
        }

        fn tick(&mut self) -> Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    fn pool() -> Pool {
        Pool {
            jobs: 3,
            limit: Duration::from_millis(300),
            batch: 4,
            stack: 1 << 20,
            grace: Duration::from_millis(200),
        }
    }

    /// A pool where no item overruns: a limit a loaded machine cannot
    /// reach, so a slow batch is not taken for a runaway one.
    fn patient() -> Pool {
        Pool {
            limit: Duration::from_secs(30),
            ..pool()
        }
    }

    /// Runs `items` on a patient pool; its error.
    fn failing(items: impl Iterator<Item = Result<i64>> + Send, sink: &mut Collect) -> Error {
        patient()
            .run(Arc::new(Double), items, sink, &StopFlag::new())
            .unwrap_err()
    }

    #[test]
    fn results_come_back_in_order_and_an_overrun_gets_its_own() {
        let mut sink = Collect::default();
        let items = (0..200).map(Ok);
        let ended = pool()
            .run(Arc::new(Double), items, &mut sink, &StopFlag::new())
            .unwrap();
        assert_eq!(ended, Ended::All);
        let want: Vec<i64> = (0..200).map(|i| if i == 7 { -7 } else { i * 2 }).collect();
        assert_eq!(sink.0, want);
        assert!(sink.1 > 0, "the sink is ticked while the pool waits");
    }

    #[test]
    fn an_error_halts_after_the_batches_before_it() {
        let mut sink = Collect::default();
        let items = (0..400).map(|i| Ok(if i == 101 { -1 } else { i + 100 }));
        let err = failing(items, &mut sink);
        assert!(err.to_string().contains("cannot do -1"), "{err}");
        // Batches of 4: the one holding item 101 (100..104) and later ones
        // never reach the sink; all before it do, in order.
        let want: Vec<i64> = (0..100).map(|i| (i + 100) * 2).collect();
        assert_eq!(sink.0, want);
    }

    #[test]
    fn a_batch_still_in_hand_before_the_error_is_finished() {
        // Batch 0 is slow (its first item takes 300 ms); batch 1 fails at
        // once. The error is the one returned, and batch 0 reaches the
        // sink in full (a disk that fills up while a worker is on an
        // earlier batch says so, and the earlier batch is journaled).
        let mut sink = Collect::default();
        let items = (0..40).map(|i| {
            Ok(match i {
                0 => 1000,
                5 => -1,
                i => i + 100,
            })
        });
        let err = failing(items, &mut sink);
        assert!(err.to_string().contains("cannot do -1"), "{err}");
        assert_eq!(sink.0, vec![2000, 202, 204, 206]);
    }

    #[test]
    fn a_stop_ends_it_between_items() {
        let stop = StopFlag::new();
        let mut sink = Collect::default();
        let flag = stop.clone();
        let items = (0..100_000).map(move |i| {
            if i == 50 {
                flag.request(15);
            }
            Ok(i % 7 + 8)
        });
        let ended = patient()
            .run(Arc::new(Double), items, &mut sink, &stop)
            .unwrap();
        assert_eq!(ended, Ended::Stopped(15));
        assert!(sink.0.len() >= 40 && sink.0.len() <= 50, "{}", sink.0.len());
    }
}
