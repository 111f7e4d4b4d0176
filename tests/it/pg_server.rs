//! A PostgreSQL server of the tests' and benchmarks' own, from Debian's
//! `postgresql` package, in a temporary folder (as the `postgres` user when
//! run as root). Without the package it says so and gives none; with
//! `LETTERPRESS_REQUIRE_POSTGRES=1` (as in CI) it panics instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A PostgreSQL server of the test's own, stopped when dropped.
pub struct Server {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    root: bool,
}

/// The password of the user `letters`.
pub const PASSWORD: &str = "s3cret-letters";

impl Server {
    /// Starts a server with a user `letters` (password [`PASSWORD`], asked
    /// for over TCP) and a database `bank`, or says why it cannot.
    pub fn start(name: &str) -> Option<Server> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .find(|b| b.join("initdb").exists())
        }) else {
            let why =
                "PostgreSQL is not installed (Debian's `postgresql` package; .ci/run installs it)";
            assert!(
                std::env::var_os("LETTERPRESS_REQUIRE_POSTGRES").is_none(),
                "{why}"
            );
            eprintln!("SKIPPED: {why}");
            return None;
        };
        let root = unsafe { libc::geteuid() } == 0;
        let dir =
            std::env::temp_dir().join(format!("letterpress-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Server {
            dir,
            bin,
            port,
            root,
        };
        if root {
            assert!(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .unwrap()
                .success());
        }
        let data = server.dir.join("data");
        let init = server.as_owner(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(init.status.success(), "initdb: {}", show(&init));
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port,
            server.dir.display()
        );
        let log = server.dir.join("log");
        let start = server.as_owner(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            start.status.success(),
            "pg_ctl start: {} {}",
            show(&start),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        server.psql(
            "postgres",
            &format!("CREATE USER letters PASSWORD '{PASSWORD}'"),
        );
        server.psql("postgres", "CREATE DATABASE bank OWNER letters");
        Some(server)
    }

    fn as_owner(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).current_dir(&self.dir).output().unwrap()
    }

    /// Runs SQL in `db` as the superuser, over the Unix socket.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.as_owner(
            "psql",
            &[
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.dir.to_str().unwrap(),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(out.status.success(), "psql {sql}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies a file into a table with psql's `\copy` (the file is read by
    /// psql, so it need not be readable by the server).
    pub fn copy_in(&self, table: &str, file: &Path, options: &str) {
        let readable = self.dir.join(file.file_name().unwrap());
        std::fs::copy(file, &readable).unwrap();
        if self.root {
            Command::new("chown")
                .arg("postgres")
                .arg(&readable)
                .status()
                .unwrap();
        }
        self.psql(
            "bank",
            &format!(
                "\\copy {table} FROM '{}' WITH ({options})",
                readable.display()
            ),
        );
    }

    /// Turns TLS on with this certificate and key, and lets TCP clients in
    /// only over TLS (`hostssl`).
    pub fn tls_only(&self, cert: &Path, key: &Path) {
        let data = self.dir.join("data");
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            let dst = data.join(to);
            std::fs::copy(from, &dst).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
            if self.root {
                Command::new("chown")
                    .arg("postgres")
                    .arg(&dst)
                    .status()
                    .unwrap();
            }
        }
        let hba = data.join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&hba, text).unwrap();
        self.psql("postgres", "ALTER SYSTEM SET ssl = on");
        self.psql("postgres", "SELECT pg_reload_conf()");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    /// The URL letterpress connects with (over TCP, password asked).
    pub fn url(&self) -> String {
        format!("postgresql://letters@127.0.0.1:{}/bank", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.as_owner(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn show(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
