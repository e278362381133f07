//! Private Redis and PostgreSQL servers for the fault tests that stop, crash or restart them: the
//! shared test servers other tests use are never touched. Each picks a free port and lives in its
//! own temporary folder, removed on drop.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A free TCP port on loopback for a test server (bound then released). Taken below the kernel's
/// ephemeral range: a port the kernel hands out (`bind` to port 0) may be given again, between
/// the release and the server's own bind, as the local port of one of the suite's many outgoing
/// connections, and the server then fails to start.
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral_start / 2);
    loop {
        let port = low + rand::random::<u16>() % (ephemeral_start - low);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn temp_folder(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eventmill-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port} within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A redis-server with AOF on (`appendfsync everysec`, as `docker-compose.yml` runs it).
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// `requirepass`, if any.
    password: Option<String>,
    /// More `redis-server` arguments.
    extra: Vec<String>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// One started with more `redis-server` arguments (`--enable-protected-configs yes`...).
    pub fn start_with(args: &[&str]) -> Self {
        let extra = args.iter().map(|a| (*a).to_owned()).collect();
        let mut redis = Self { port: free_port(), dir: temp_folder("redis"), child: None, password: None, extra };
        redis.restart();
        redis
    }

    /// One that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        let password = Some(password.to_owned());
        let mut redis = Self { port: free_port(), dir: temp_folder("redis"), child: None, password, extra: Vec::new() };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Starts it again on the same port and data (the AOF is replayed).
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(self.password.iter().flat_map(|p| ["--requirepass", p.as_str()]))
            .args(&self.extra)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    /// SIGKILL: a crash of Redis itself; what was not yet fsynced to the AOF is lost.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of its own (initdb + pg_ctl; as the `postgres` user when run as root).
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        Self::start_with_auth("trust")
    }

    /// One whose TCP clients must give a password (SCRAM); `eventmill` has none, so every password
    /// is refused.
    pub fn start_with_passwords() -> Self {
        Self::start_with_auth("scram-sha-256")
    }

    fn start_with_auth(host_auth: &str) -> Self {
        let dir = temp_folder("pg");
        let pg = Self { port: free_port(), bin: pg_bin(), dir };
        if is_root() {
            assert!(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&pg.dir).status().unwrap().success());
        }
        let data = pg.data();
        let host_auth = format!("--auth-host={host_auth}");
        let args = ["-D", &data, "-U", "eventmill", "--auth-local=trust", &host_auth, "-E", "UTF8", "--locale=C"];
        pg.run("initdb", &[&args[..], &["--no-sync"]].concat()).unwrap();
        pg.resume();
        pg
    }

    /// The URL of its `postgres` database (tests create their own databases in it).
    pub fn url(&self) -> String {
        format!("postgres://eventmill@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it hard (`-m immediate`: connections dropped, no checkpoint), as a crash would.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]).unwrap();
    }

    /// Starts it (again).
    pub fn resume(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("postgres.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"]).unwrap();
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs a PostgreSQL tool (as the `postgres` user when we are root: it refuses to run as root).
    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program).current_dir("/");
            command
        } else {
            Command::new(program)
        };
        let output = command.args(args).stdin(Stdio::null()).output().map_err(|e| format!("{tool}: {e}"))?;
        if !output.status.success() {
            return Err(format!("{tool} failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The newest `/usr/lib/postgresql/<version>/bin` (what `scripts/services.sh` uses), or `PATH`.
fn pg_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("EVENTMILL_PG_BIN") {
        return bin.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_default()
}
