//! A throwaway PostgreSQL cluster for the test suite and the benchmark:
//! initdb into a fresh temporary directory, `postgres` on a free loopback
//! port, gone when the process that started it exits.
//!
//! initdb and postgres refuse to run as root, so as root both run as the
//! `postgres` user (via `setpriv`). The server is started from a thread that
//! lives as long as the process and gets `--pdeathsig`, so it is stopped
//! even when the test binary exits without running destructors.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
const DIR_PREFIX: &str = "execstore-pg-";

#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    pub dir: PathBuf,
    as_root: bool,
    args: Vec<String>,
    pid: std::sync::Mutex<Option<u32>>,
}

impl Cluster {
    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn bin_dir() -> PathBuf {
        std::env::var_os("EXECSTORE_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR))
    }

    /// Starts a new cluster; `extra` are `-c name=value` settings.
    pub fn start(extra: &[(&str, &str)]) -> Result<Cluster, String> {
        let bin = Self::bin_dir();
        if !bin.join("postgres").exists() {
            return Err(format!(
                "PostgreSQL server binaries not found in {} (install Debian's postgresql-15, or set EXECSTORE_PG_BIN)",
                bin.display()
            ));
        }
        sweep_stale_dirs();
        let as_root = is_root();
        let dir = cluster_dir(as_root)?;
        let data = dir.join("data");
        run_as_postgres(
            as_root,
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
        )?;
        let port = free_port()?;
        let mut args: Vec<String> = vec![
            "-D".into(),
            path_str(&data).into(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            path_str(&dir).into(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
        ];
        for (name, value) in extra {
            args.push("-c".into());
            args.push(format!("{name}={value}"));
        }
        let cluster = Cluster {
            port,
            dir,
            as_root,
            args,
            pid: std::sync::Mutex::new(None),
        };
        cluster.spawn()?;
        Ok(cluster)
    }

    /// A streaming standby of this cluster (`pg_basebackup -R` over
    /// loopback), started on a port of its own with the same settings.
    pub fn start_standby(&self) -> Result<Cluster, String> {
        let dir = cluster_dir(self.as_root)?;
        let data = dir.join("data");
        run_as_postgres(
            self.as_root,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                path_str(&data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                // Not a spread checkpoint: that waits minutes for nothing.
                "--checkpoint=fast",
            ],
        )?;
        let port = free_port()?;
        let mut args = self.args.clone();
        for (i, arg) in args.iter_mut().enumerate() {
            if i > 0 && self.args[i - 1] == "-D" {
                *arg = path_str(&data).into();
            } else if i > 0 && self.args[i - 1] == "-p" {
                *arg = port.to_string();
            } else if i > 0 && self.args[i - 1] == "-k" {
                *arg = path_str(&dir).into();
            }
        }
        let standby = Cluster {
            port,
            dir,
            as_root: self.as_root,
            args,
            pid: std::sync::Mutex::new(None),
        };
        standby.spawn()?;
        Ok(standby)
    }

    /// Starts the server process (again, after `stop`) and waits until it
    /// accepts connections.
    pub fn spawn(&self) -> Result<(), String> {
        let bin = Self::bin_dir();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("postgres.log"))
            .map_err(|e| e.to_string())?;
        let mut command = as_postgres(self.as_root, &bin.join("postgres"));
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        // Spawned from a thread that never ends: PR_SET_PDEATHSIG fires when
        // the spawning *thread* exits, and this one lives as long as the process.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("throwaway-postgres".into())
            .spawn(move || {
                let spawned = command.spawn().map(|child| child.id());
                let _ = tx.send(spawned);
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| e.to_string())?;
        let pid = rx
            .recv()
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("start postgres: {e}"))?;
        if let Ok(mut slot) = self.pid.lock() {
            *slot = Some(pid);
        }
        self.wait_ready(Duration::from_secs(60))
    }

    /// Stops the server (fast shutdown) and waits until it no longer answers.
    pub fn stop(&self) -> Result<(), String> {
        let pid = self.pid.lock().ok().and_then(|mut slot| slot.take());
        let Some(pid) = pid else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let started = Instant::now();
        while Path::new("/proc").join(pid.to_string()).exists() {
            // A zombie (exited, not yet reaped by its parent thread) is gone
            // as far as clients are concerned.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.split_whitespace().nth(2) == Some("Z") {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("postgres {pid} did not stop"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let ready = Command::new(Self::bin_dir().join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-q",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if started.elapsed() > limit {
                let log =
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
                return Err(format!(
                    "postgres did not become ready on port {}: {log}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A new directory for a cluster, owned by the postgres user when we are
/// root. Its `data/` is left to initdb or pg_basebackup, which create it
/// with the permissions the server insists on.
fn cluster_dir(as_root: bool) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "{DIR_PREFIX}{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if as_root {
        chown_postgres(&dir)?;
    }
    Ok(dir)
}

/// Runs one of PostgreSQL's programs to completion, as the postgres user
/// when we are root; its stderr is the error when it fails.
fn run_as_postgres(as_root: bool, program: &str, args: &[&str]) -> Result<(), String> {
    let output = as_postgres(as_root, &Cluster::bin_dir().join(program))
        .args(args)
        .output()
        .map_err(|e| format!("run {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(dir: &Path) -> Result<(), String> {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres", path_str(dir)])
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "chown postgres {} failed (is there a postgres user?)",
            dir.display()
        ))
    }
}

/// A command that runs `program` as the postgres user when we are root, and
/// that dies with the thread that spawns it.
fn as_postgres(as_root: bool, program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    if as_root {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    command.args(["--pdeathsig", "SIGQUIT", "--"]).arg(program);
    command
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Removes directories of clusters whose process is gone.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
