//! The shipped `deploy/slurm/letterpress.sbatch` on a real single-node
//! Slurm cluster (`tests/slurm/cluster.sh` starts it; it needs root and
//! Debian's Slurm packages, which `.ci/run` installs): an array of 3 over a
//! few thousand records, one task requeued in the middle of its shard
//! (`scontrol requeue`), another's letterpress killed with SIGKILL (the
//! task requeues itself), and the one merge job. The merged journal must be
//! a single machine's, byte for byte.
//!
//! Where Slurm cannot start (not root, not installed) the test says so and
//! does nothing; with `LETTERPRESS_REQUIRE_SLURM=1` (as in CI) it fails
//! instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

const RECORDS: usize = 4_500;
const LIMIT: Duration = Duration::from_secs(170);

/// One cluster at a time: they share the machine's ports and munge.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running cluster, stopped when dropped.
struct Cluster {
    dir: PathBuf,
    conf: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    fn start(dir: &Path) -> Option<Cluster> {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Command::new(root().join("tests/slurm/cluster.sh"))
            .args(["start", dir.to_str().unwrap()])
            .output()
            .expect("cluster.sh runs");
        match out.status.code() {
            Some(0) => Some(Cluster {
                dir: dir.to_owned(),
                conf: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
                _turn: turn,
            }),
            Some(3) => {
                let why = String::from_utf8_lossy(&out.stderr);
                assert!(
                    std::env::var_os("LETTERPRESS_REQUIRE_SLURM").is_none(),
                    "Slurm is required here but cannot start: {why}"
                );
                eprintln!("SKIPPED: the Slurm test needs a cluster: {why}");
                None
            }
            _ => panic!("the cluster did not start: {}", describe(&out)),
        }
    }

    /// A Slurm command against this cluster.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn text(&self, program: &str, args: &[&str]) -> String {
        let out = self.cmd(program).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every job the controller knows (finished ones too), by job id: its
    /// `scontrol show job` fields.
    fn jobs(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let text = self.text("scontrol", &["show", "job", "--oneliner"]);
        text.lines()
            .filter(|l| l.starts_with("JobId="))
            .map(|l| {
                let fields: BTreeMap<String, String> = l
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let id = match (fields.get("ArrayJobId"), fields.get("ArrayTaskId")) {
                    (Some(a), Some(t)) => format!("{a}_{t}"),
                    _ => fields["JobId"].clone(),
                };
                (id, fields)
            })
            .collect()
    }

    fn job(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.jobs().remove(id)
    }

    /// Submits the shipped script as `array` with `letterpress` from
    /// `bin_dir`, for the batch `layout` over `data` into `run`, with
    /// `extra` exported too; returns the array's job id.
    fn submit(&self, dir: &Path, bin_dir: &Path, array: &str, batch: Batch, extra: &str) -> String {
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let export = format!(
            "ALL,RUN={},DATA={},LAYOUT={},AS_OF=2026-11-22,LETTERPRESS_LAYOUTS={},LETTERPRESS_TRUST={}{extra}",
            batch.run.display(),
            batch.data.display(),
            batch.layout,
            root().join("layouts").display(),
            trust_list().display()
        );
        let script = root().join("deploy/slurm/letterpress.sbatch");
        ok(&self
            .cmd("sbatch")
            .current_dir(dir)
            .env("PATH", &path)
            .args([
                "--parsable",
                &format!("--array={array}"),
                "--cpus-per-task=1",
                "--mem=600M",
                &format!("--export={export}"),
                script.to_str().unwrap(),
            ])
            .output()
            .unwrap())
    }
}

/// What a submission renders.
struct Batch<'a> {
    run: &'a Path,
    data: &'a Path,
    layout: &'a str,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("tests/slurm/cluster.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

fn wait_until(what: &str, started: Instant, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(started.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The pid of the letterpress rendering shard `k` of 3, if one runs.
fn letterpress_pid(k: usize) -> Option<u32> {
    let out = Command::new("pgrep")
        .args(["-f", &format!("letterpress run .*--shard {k}/3")])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .find(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "letterpress")
        })
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", describe(out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_sbatch_script_renders_requeues_and_merges_on_a_real_cluster() {
    let dir = scratch("slurm");
    let Some(cluster) = Cluster::start(&dir.join("cluster")) else {
        return;
    };
    let data = welcome_records(&dir.join("customers.jsonl"), RECORDS, 11);
    let single = dir.join("single");
    let res = run_layout("welcome-letter@2", &data, &single, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));

    let run = dir.join("run");
    // Each attempt of a task calls itself another node (node-0, node-1,
    // ...), as a task requeued onto another node would be: the lock its
    // lost attempt left must be waited out (a lease of 20 s here; Slurm
    // starts a requeued task some 12 s later), not refused.
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let shim = bin_dir.join("letterpress");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nLETTERPRESS_HOSTNAME=node-${{SLURM_RESTART_COUNT:-0}} exec {} \"$@\"\n",
            bin().display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&shim).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&shim, perms).unwrap();
    let started = Instant::now();
    let batch = Batch {
        run: &run,
        data: &data,
        layout: "welcome-letter@2",
    };
    let array = cluster.submit(
        &dir,
        &bin_dir,
        "1-3",
        batch,
        ",JOBS=1,LETTERPRESS_LOCK_LEASE=20,LOCK_WAIT=60",
    );
    let shard = |k: usize| run.join(format!("shard-{k}-of-3/documents.jsonl"));

    // Task 1 is requeued in the middle of its shard: Slurm signals it and
    // kills it soon after; the task runs again and resumes after the
    // records its journal kept.
    wait_until("shard 1 to start", started, || lines(&shard(1)) > 20);
    ok(&cluster
        .cmd("scontrol")
        .args(["requeue", &format!("{array}_1")])
        .output()
        .unwrap());
    // Task 2's letterpress is killed outright: the task requeues itself.
    wait_until("shard 2 to start", started, || {
        lines(&shard(2)) > 20 && letterpress_pid(2).is_some()
    });
    let pid = letterpress_pid(2).unwrap();
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());

    // One merge job, which completes once all three shards are done.
    let merge_name = format!("letterpress-merge-{array}");
    let merges = || -> Vec<(String, BTreeMap<String, String>)> {
        cluster
            .jobs()
            .into_iter()
            .filter(|(_, f)| f.get("JobName") == Some(&merge_name))
            .collect()
    };
    wait_until("the merge job", started, || {
        merges()
            .iter()
            // COMPLETING is on the way to COMPLETED (the node is still
            // cleaning up): not yet the end.
            .any(|(_, f)| !matches!(f["JobState"].as_str(), "PENDING" | "RUNNING" | "COMPLETING"))
    });
    let seconds = started.elapsed().as_secs_f64();
    let merges = merges();
    assert_eq!(merges.len(), 1, "exactly one merge job: {merges:?}");
    let (merge_id, merge) = &merges[0];
    assert_eq!(merge["JobState"], "COMPLETED", "{merge:?}");
    assert_eq!(merge["ExitCode"], "0:0", "{merge:?}");
    assert_eq!(
        merge["Requeue"], "0",
        "the merge is never requeued: {merge:?}"
    );
    assert!(
        merge["TimeLimit"] != "UNLIMITED" && merge.contains_key("MinMemoryNode"),
        "the merge has limits: {merge:?}"
    );
    for (k, restarts) in [(1, "1"), (2, "1"), (3, "0")] {
        let task = cluster.job(&format!("{array}_{k}")).unwrap();
        assert_eq!(task["JobState"], "COMPLETED", "task {k}: {task:?}");
        assert_eq!(task["Restarts"], restarts, "task {k}: {task:?}");
    }
    // The requeued task kept its first attempt's log.
    let log = std::fs::read_to_string(dir.join(format!("letterpress-{array}_1.log"))).unwrap();
    assert!(
        log.contains("attempt 1") && log.contains("attempt 2") && log.contains("resumed: kept"),
        "{log}"
    );
    // Whether letterpress stops on the requeue's SIGTERM before the kill
    // comes is a matter of timing; both must end without a person. Stopped:
    // its lock was released and the second attempt took it at once.
    // Killed: the second attempt, on "another node", waited out the first
    // one's lease and took the lock over, naming the old holder.
    let graceful = log.contains("stopped by SIGTERM");
    if graceful {
        assert!(
            !log.contains("took over the lock") && !log.contains("waiting up to"),
            "a lock released on SIGTERM is taken at once: {log}"
        );
    } else {
        assert!(
            log.contains("waiting up to")
                && log.contains("lease of 20 s expire")
                && log.contains("node-0"),
            "the second attempt waited out the first one's lease: {log}"
        );
    }
    let log = std::fs::read_to_string(dir.join(format!("letterpress-{array}_2.log"))).unwrap();
    assert!(log.contains("requeueing this task"), "{log}");
    assert!(
        dir.join(format!("{merge_name}.log")).is_file(),
        "its own log ({merge_id})"
    );

    // The run: verified, and the journal of a single machine.
    let res = letterpress(&["verify", run.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        std::fs::read(run.join("documents.jsonl")).unwrap()
            == std::fs::read(single.join("documents.jsonl")).unwrap(),
        "the merged journal is the single run's, byte for byte"
    );
    eprintln!(
        "slurm: {RECORDS} records in 3 shards, task 1 requeued ({}), task 2's letterpress killed: merged and verified in {seconds:.0} s",
        if graceful {
            "stopped on SIGTERM"
        } else {
            "killed, its lease waited out"
        }
    );
}

#[test]
fn a_shard_that_fails_for_good_cancels_the_merge() {
    let dir = scratch("slurm-fail");
    let Some(cluster) = Cluster::start(&dir.join("cluster")) else {
        return;
    };
    let data = welcome_records(&dir.join("customers.jsonl"), 30, 3);
    let run = dir.join("run");
    // An array numbered from 0 works; a layout that does not exist fails
    // every task for good (exit 2).
    let started = Instant::now();
    let batch = Batch {
        run: &run,
        data: &data,
        layout: "no-such-layout",
    };
    let array = cluster.submit(&dir, bin().parent().unwrap(), "0-1", batch, "");
    let merge_name = format!("letterpress-merge-{array}");
    wait_until("the merge job to end", started, || {
        cluster.jobs().values().any(|f| {
            f.get("JobName") == Some(&merge_name)
                && !matches!(f["JobState"].as_str(), "PENDING" | "RUNNING")
        })
    });
    let jobs = cluster.jobs();
    let merge = jobs
        .values()
        .find(|f| f.get("JobName") == Some(&merge_name))
        .unwrap();
    assert_eq!(merge["JobState"], "CANCELLED", "{merge:?}");
    assert!(merge["Reason"].contains("Dependency"), "{merge:?}");
    for t in 0..2 {
        let task = &jobs[&format!("{array}_{t}")];
        assert_eq!(task["JobState"], "FAILED", "{task:?}");
        assert_eq!(task["ExitCode"], "2:0", "{task:?}");
    }
    let log = std::fs::read_to_string(dir.join(format!("letterpress-{array}_0.log"))).unwrap();
    assert!(log.contains("shard 1/2"), "task 0 is shard 1: {log}");
}
