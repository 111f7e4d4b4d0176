//! The two lanes, each with its own capacity: documents on demand (a
//! fixed number rendering at once, a bounded number waiting, 429 at once
//! beyond that) and batch jobs (one at a time, on threads of lower
//! priority, so that a 100,000-letter job never makes a reprint wait).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::oneshot;

use super::error::ApiError;
use letterpress::ops::jobs::Jobs;
use letterpress::ops::run::{Observer, Progress};
use letterpress::util::stop::StopFlag;

/// The on-demand lane: `workers` threads take documents from a queue of
/// at most `queue`; a worker that finishes one takes the next at once,
/// without a round trip through the async runtime. A worker still on one
/// document after the per-document limit is given up and replaced (a
/// thread cannot be stopped: it goes when its render ends, if ever).
pub struct OnDemand {
    tx: mpsc::SyncSender<Task>,
    workers: usize,
    queue: usize,
    /// Documents in the queue.
    waiting: Arc<AtomicUsize>,
    /// What the workers share with the watchdog.
    crew: Arc<Crew>,
    /// A moving average of a document's time in microseconds, for
    /// `Retry-After`.
    average_us: Arc<AtomicU64>,
}

type Task = Box<dyn FnOnce() + Send>;

/// The workers: the queue they take from, when each started its document,
/// and how many were given up.
struct Crew {
    rx: Mutex<mpsc::Receiver<Task>>,
    waiting: Arc<AtomicUsize>,
    /// Per worker: since when it makes a document, and whether it was
    /// given up.
    busy: Mutex<Vec<(Option<Instant>, bool)>>,
    /// Workers given up, still in their render.
    stuck: AtomicUsize,
}

/// A worker's stack: as a run's workers have (Typst recurses deeply on
/// some documents).
const WORKER_STACK: usize = 64 << 20;

impl Crew {
    /// Starts worker number `n`.
    fn hire(self: &Arc<Crew>, n: usize) {
        let crew = self.clone();
        std::thread::Builder::new()
            .name(format!("on-demand-{n}"))
            .stack_size(WORKER_STACK)
            .spawn(move || loop {
                let task = match lock(&crew.rx).recv() {
                    Ok(task) => task,
                    Err(_) => return,
                };
                crew.waiting.fetch_sub(1, Ordering::SeqCst);
                lock(&crew.busy)[n].0 = Some(Instant::now());
                task();
                let mut busy = lock(&crew.busy);
                busy[n].0 = None;
                if busy[n].1 {
                    // Given up and replaced: this thread goes.
                    crew.stuck.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            })
            .expect("a thread for on-demand documents");
    }

    /// Gives up the workers on one document for longer than `limit` and
    /// hires one in the place of each.
    fn watch(self: &Arc<Crew>, limit: Duration) {
        let overran: Vec<usize> = {
            let mut busy = lock(&self.busy);
            let mut overran = Vec::new();
            for (n, (since, given_up)) in busy.iter_mut().enumerate() {
                if !*given_up && since.is_some_and(|s| s.elapsed() > limit) {
                    *given_up = true;
                    overran.push(n);
                }
            }
            for _ in &overran {
                busy.push((None, false));
            }
            overran
        };
        for n in overran {
            self.stuck.fetch_add(1, Ordering::SeqCst);
            let new = lock(&self.busy).len() - 1;
            eprintln!("letterpress serve: on-demand worker {n} was on one document for more than {} s; it is given up and replaced", limit.as_secs_f64());
            self.hire(new);
        }
    }
}

impl OnDemand {
    /// `workers` rendering at once, `queue` more waiting; a worker on one
    /// document for longer than `limit` is replaced.
    pub fn new(workers: usize, queue: usize, limit: Duration) -> OnDemand {
        let (tx, rx) = mpsc::sync_channel::<Task>(queue);
        let waiting = Arc::new(AtomicUsize::new(0));
        let crew = Arc::new(Crew {
            rx: Mutex::new(rx),
            waiting: waiting.clone(),
            busy: Mutex::new(vec![(None, false); workers]),
            stuck: AtomicUsize::new(0),
        });
        for n in 0..workers {
            crew.hire(n);
        }
        let watcher = Arc::downgrade(&crew);
        std::thread::Builder::new()
            .name("on-demand-watchdog".into())
            .spawn(move || {
                while let Some(crew) = watcher.upgrade() {
                    crew.watch(limit);
                    drop(crew);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .expect("a thread for the watchdog");
        OnDemand {
            tx,
            workers,
            queue,
            waiting,
            crew,
            average_us: Arc::new(AtomicU64::new(20_000)),
        }
    }

    /// Queues `work` for a worker, or refuses at once (429) when the queue
    /// is full; its answer comes on the receiver.
    pub fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, ApiError> {
        let (answer, answered) = oneshot::channel();
        let (average, started) = (self.average_us.clone(), Instant::now());
        let task: Task = Box::new(move || {
            let _ = answer.send(work());
            let us = started.elapsed().as_micros().min(u64::MAX as u128) as u64;
            let old = average.load(Ordering::Relaxed);
            average.store((old * 7 + us) / 8, Ordering::Relaxed);
        });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(task) {
            Ok(()) => Ok(answered),
            Err(_) => {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                Err(self.busy())
            }
        }
    }

    /// The answer when the queue is full: 429 with the seconds the queue
    /// ahead takes at the recent time per document.
    pub fn busy(&self) -> ApiError {
        let wait = self.average_us.load(Ordering::Relaxed) * (self.queue as u64 + 1)
            / self.workers.max(1) as u64;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!(
                "{} documents are rendering or waiting, the most this server takes; ask again after Retry-After seconds",
                self.workers + self.queue
            ),
        )
        .retry(wait.div_ceil(1_000_000))
    }

    /// Requests waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Requests rendering (given-up workers not counted).
    pub fn rendering(&self) -> usize {
        lock(&self.crew.busy)
            .iter()
            .filter(|(since, given_up)| since.is_some() && !given_up)
            .count()
    }

    /// Workers given up, still in a render that has not ended.
    pub fn stuck(&self) -> usize {
        self.crew.stuck.load(Ordering::SeqCst)
    }

    /// Whether as many workers are stuck as the lane has: the process
    /// should be restarted (`/healthz` says so).
    pub fn worn_out(&self) -> bool {
        self.stuck() >= self.workers
    }

    /// Whether a request now would be refused.
    pub fn full(&self) -> bool {
        self.waiting() >= self.queue
    }
}

/// The answer when a request's time budget is spent.
pub fn timed_out() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "the request's time budget (--timeout, queue time included) was spent before its document was made; nothing was recorded",
    )
    .retry(1)
}

/// The batch lane: a thread running one job at a time.
pub struct JobLane {
    inner: Arc<LaneState>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct LaneState {
    queue: Mutex<VecDeque<String>>,
    wake: Condvar,
    /// The stop flag of the running job, by id.
    running: Mutex<HashMap<String, StopFlag>>,
    /// Progress of running jobs, by id.
    progress: Mutex<HashMap<String, Progress>>,
    closing: StopFlag,
}

/// The nice value of the batch lane's threads (the run's workers inherit
/// it): on-demand requests come first when both want the processor.
const BATCH_NICE: i32 = 10;

impl JobLane {
    /// Starts the lane over `jobs`, with the unfinished jobs queued.
    pub fn start(jobs: Arc<Jobs>) -> JobLane {
        let inner = Arc::new(LaneState {
            queue: Mutex::new(jobs.unfinished().into_iter().map(|j| j.id).collect()),
            wake: Condvar::new(),
            running: Mutex::default(),
            progress: Mutex::default(),
            closing: StopFlag::new(),
        });
        let state = inner.clone();
        let thread = std::thread::Builder::new()
            .name("job-lane".into())
            .spawn(move || lane_loop(&jobs, &state))
            .expect("a thread for the job lane");
        JobLane {
            inner,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues job `id` (once).
    pub fn push(&self, id: &str) {
        let mut q = lock(&self.inner.queue);
        if !q.iter().any(|j| j == id) && !lock(&self.inner.running).contains_key(id) {
            q.push_back(id.to_owned());
        }
        self.inner.wake.notify_all();
    }

    /// Stops job `id` between records if it is running.
    pub fn stop(&self, id: &str) {
        lock(&self.inner.queue).retain(|j| j != id);
        if let Some(flag) = lock(&self.inner.running).get(id) {
            flag.request(libc::SIGTERM);
        }
    }

    /// Jobs waiting in the lane.
    pub fn queued(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    /// The progress of job `id`, while it runs.
    pub fn progress(&self, id: &str) -> Option<Progress> {
        lock(&self.inner.progress).get(id).copied()
    }

    /// Stops the running job between records (it resumes at the next
    /// start) and waits for the lane to end.
    pub fn close(&self) {
        self.inner.closing.request(libc::SIGTERM);
        for flag in lock(&self.inner.running).values() {
            flag.request(libc::SIGTERM);
        }
        self.inner.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn lane_loop(jobs: &Jobs, s: &Arc<LaneState>) {
    // SAFETY: setpriority on this thread only (a Linux thread id).
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, BATCH_NICE);
    }
    loop {
        let id = {
            let mut q = lock(&s.queue);
            loop {
                if s.closing.requested().is_some() {
                    return;
                }
                if let Some(id) = q.pop_front() {
                    break id;
                }
                q = s
                    .wake
                    .wait_timeout(q, Duration::from_secs(1))
                    .map(|(q, _)| q)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        let stop = StopFlag::new();
        lock(&s.running).insert(id.clone(), stop.clone());
        let (state, key) = (s.clone(), id.clone());
        let observer = Observer::new(move |p| {
            lock(&state.progress).insert(key.clone(), p);
        });
        let started = Instant::now();
        match jobs.run(&id, stop, observer) {
            Ok(job) => eprintln!(
                "letterpress serve: job {id} {} after {:.1} s",
                serde_json::to_value(job.state)
                    .map(|v| v.as_str().unwrap_or("").to_owned())
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => eprintln!("letterpress serve: job {id}: {e}"),
        }
        lock(&s.running).remove(&id);
        lock(&s.progress).remove(&id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
