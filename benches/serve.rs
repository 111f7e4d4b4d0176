//! Load benchmark of `letterpress serve`: welcome letters on demand
//! (`POST /v1/documents`, pdf) from wrk (Debian's `wrk`, a closed-loop
//! HTTP load generator, run on the same machine) at concurrency 1, 4 and
//! 16, alone and while a 20,000-letter job runs in the batch lane; and, to
//! compare, the batch engine's own letters/s on the same machine.
//!
//!     cargo bench --bench serve
//!     LP_BENCH_DIR=/dev/shm cargo bench --bench serve   # state on tmpfs
//!     LP_BENCH_REQUESTS=100000 cargo bench --bench serve  # peak RSS
//!
//! Prints, per case, requests/s, p50 and p99 latency (wrk's), non-2xx
//! answers, and the CPU ms per document of the server (user + system of
//! the server process over the case, the job's included when one runs)
//! and of wrk, which shares the cores. With `LP_BENCH_REQUESTS`, it also sends
//! that many requests in a row at concurrency 4 and prints the server's
//! peak RSS after the first 1,000 and after all of them.
//!
//! Targets (2 cores): at saturation at least 90% of the batch's letters/s;
//! p99 under 50 ms at half the load (concurrency 1: one of the two
//! workers busy), with or without a job running; 100,000 requests move the
//! peak RSS by less than 10%.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use letterpress::ops::synth::welcome_record;
use letterpress::util::rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_letterpress");

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's user + system CPU seconds and its peak RSS in MB.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

fn start(dir: &Path, token_file: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let child = Command::new(BIN)
        .current_dir(&root)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--queue",
            "256",
            "--workers",
            "2",
        ])
        .arg("--tokens")
        .arg(token_file)
        .arg("--state")
        .arg(dir.join("state"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    let started = Instant::now();
    while !curl_ok(&format!("http://127.0.0.1:{port}/readyz")) {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn curl_ok(url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// User + system CPU seconds of this process's finished children (wrk).
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// One wrk run: (requests/s, p50 ms, p99 ms, non-2xx, requests).
fn wrk(port: u16, script: &Path, connections: usize, seconds: u64) -> (f64, f64, f64, u64, u64) {
    let out = Command::new("wrk")
        .args([
            "-t",
            &connections.min(2).to_string(),
            "-c",
            &connections.to_string(),
        ])
        .args(["-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = |key: &str| {
        let v = text
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0");
        let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = n.parse().unwrap_or(0.0);
        match unit {
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            _ => n,
        }
    };
    let num = |key: &str| {
        text.lines()
            .find(|l| l.contains(key))
            .and_then(|l| l.split(key).nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (
        num("Requests/sec:"),
        ms("50%"),
        ms("99%"),
        num("Non-2xx or 3xx responses:") as u64,
        requests,
    )
}

fn main() {
    let base = std::env::var_os("LP_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("letterpress-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens");
    let out = Command::new(BIN)
        .args(["token", "bench", "--scopes", "render,jobs", "--append"])
        .arg(&tokens)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // 2,000 different customers, one request body a line.
    let mut rng = Rng::new(42);
    let mut bodies = std::fs::File::create(dir.join("bodies.jsonl")).unwrap();
    for i in 0..2000 {
        let rec = welcome_record(i, &mut rng);
        let asked = serde_json::json!({"layout": "welcome-letter", "as_of": "2026-12-05", "channel": "pdf", "record": rec});
        writeln!(bodies, "{asked}").unwrap();
    }
    let script = dir.join("post.lua");
    std::fs::write(
        &script,
        format!(
            "local bodies = {{}}\nfor line in io.lines(\"{}\") do bodies[#bodies + 1] = line end\nlocal i = math.random(#bodies)\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(\"POST\", \"/v1/documents\", {{[\"Content-Type\"] = \"application/json\", [\"Authorization\"] = \"Bearer {token}\"}}, bodies[i])\nend\n",
            dir.join("bodies.jsonl").display()
        ),
    )
    .unwrap();
    let cpu = children_cpu();
    let batch = batch_letters_per_second(&dir);
    println!(
        "batch run, 20,000 welcome letters, 2 workers: {batch:.0} letters/s, {:.2} ms CPU a letter",
        (children_cpu() - cpu) * 1000.0 / 20_000.0
    );
    let server = start(&dir, &tokens);
    let pid = server.child.id();
    // Warm up (fonts, caches, the journal).
    wrk(server.port, &script, 2, 3);
    println!(
        "{:<34} {:>7} {:>7} {:>7} {:>7} {:>10} {:>10}",
        "case", "req/s", "p50 ms", "p99 ms", "non-2xx", "server CPU", "wrk CPU"
    );
    for job in [false, true] {
        if job {
            submit_job(&dir, server.port, &token);
        }
        for c in [1, 4, 16] {
            let ((cpu0, _), client0) = (usage(pid), children_cpu());
            let (rps, p50, p99, bad, n) = wrk(server.port, &script, c, 15);
            let ((cpu1, _), client1) = (usage(pid), children_cpu());
            let per = |s: f64| s * 1000.0 / n.max(1) as f64;
            let name = format!(
                "concurrency {c}{}",
                if job { ", 20,000-letter job" } else { "" }
            );
            println!(
                "{name:<34} {rps:>7.0} {p50:>7.1} {p99:>7.1} {bad:>7} {:>7.2} ms {:>7.2} ms",
                per(cpu1 - cpu0),
                per(client1 - client0)
            );
        }
    }
    let job = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!(
            "http://127.0.0.1:{}/v1/jobs/{}",
            server.port,
            job_id(&dir)
        ))
        .output()
        .unwrap();
    let job: serde_json::Value = serde_json::from_slice(&job.stdout).unwrap_or_default();
    println!(
        "the job after the cases: {} ({} of {} records)",
        job["state"], job["progress"]["done"], job["progress"]["total"]
    );
    if let Some(n) = std::env::var("LP_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        drop(server);
        let server = start(&dir, &tokens);
        let pid = server.child.id();
        let (mut sent, mut first) = (0, None);
        let started = Instant::now();
        while sent < n {
            let (_, _, _, _, k) = wrk(server.port, &script, 4, if sent == 0 { 2 } else { 10 });
            sent += k;
            first.get_or_insert(usage(pid).1);
        }
        let first = first.unwrap();
        let last = usage(pid).1;
        println!(
            "{sent} requests in a row ({:.0} s): peak RSS {first:.0} MB after the first 2 s, {last:.0} MB after all ({:+.1}%)",
            started.elapsed().as_secs_f64(),
            (last / first - 1.0) * 100.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The batch engine's letters/s on 20,000 of the same customers.
fn batch_letters_per_second(dir: &Path) -> f64 {
    let mut rng = Rng::new(42);
    let data = dir.join("batch.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&data).unwrap());
    for i in 0..20_000 {
        writeln!(f, "{}", welcome_record(i, &mut rng)).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let started = Instant::now();
    let status = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "--layout",
            "welcome-letter",
            "--channels",
            "pdf",
            "--as-of",
            "2026-12-05",
            "--jobs",
            "2",
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(dir.join("batch"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let rate = 20_000.0 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir.join("batch"));
    rate
}

/// The job's id (the job of this benchmark has the key `bench`).
fn job_id(_dir: &Path) -> String {
    letterpress::ops::jobs::Jobs::id_of("bench", "bench")
}

/// Submits the 20,000 letters as a job.
fn submit_job(dir: &Path, port: u16, token: &str) {
    let status = Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .args(["-H", "Idempotency-Key: bench"])
        .args(["-H", "Content-Type: application/x-ndjson", "--data-binary"])
        .arg(format!("@{}", dir.join("batch.jsonl").display()))
        .arg(format!(
            "http://127.0.0.1:{port}/v1/jobs?layout=welcome-letter&channels=pdf&as_of=2026-12-05"
        ))
        .status()
        .unwrap();
    assert!(status.success(), "the job was not accepted");
    // Let it get going.
    std::thread::sleep(Duration::from_secs(3));
}
