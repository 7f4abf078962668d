//! A throwaway PostgreSQL server for the tests and benchmarks (not part of the shipped library).
//!
//! [`TestPg::start`] runs `initdb` and `pg_ctl` of the installed PostgreSQL in a temporary
//! directory, listening on a unix socket there and on a free loopback port, and stops and removes
//! it on drop. Run as root, the server runs as the `postgres` user (PostgreSQL refuses root).
//! With `HYDRA_TEST_DATABASE_URL` set, that server is used instead and each [`TestPg::database`]
//! is a fresh database on it.
//!
//! Part of `tests/support`, and also included on its own by the benchmarks and by the
//! library's unit tests (`src/lib.rs`, in its test build only): it names the library
//! `hydra_bottleneck` in all of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The password of the `reader` role every test cluster has, for password-authentication tests.
pub(crate) const READER_PASSWORD: &str = "s3cret-Reader-pw";
/// The superuser's password, for connections over TCP.
pub(crate) const ADMIN_PASSWORD: &str = "postgres-admin-pw";

/// A server the tests started (stopped on drop), or the one `HYDRA_TEST_DATABASE_URL` names.
pub(crate) struct TestPg {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    as_postgres: bool,
    /// `host=… port=… user=…` of the superuser, without dbname.
    admin: String,
    pub(crate) port: u16,
    /// With [`TestPg::start_tls`]: the test CA that signed the server's certificate (valid for
    /// the name `localhost` only, not for `127.0.0.1`).
    pub(crate) ca_cert: Option<PathBuf>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The database name of a connection string made by [`TestPg`] (its last `dbname=`).
pub(crate) fn dbname(conninfo: &str) -> String {
    conninfo
        .rsplit("dbname=")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl TestPg {
    /// Starts a server (or attaches to `HYDRA_TEST_DATABASE_URL`). Panics with a clear message
    /// when PostgreSQL is not installed: the tests cannot run without it.
    pub(crate) fn start() -> TestPg {
        Self::start_with(false)
    }

    /// Starts a server that also accepts TLS, with a certificate from a throwaway CA.
    pub(crate) fn start_tls() -> TestPg {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> TestPg {
        if let Ok(url) = std::env::var("HYDRA_TEST_DATABASE_URL") {
            let params = hydra_bottleneck::conninfo::resolve(&url, &|k| std::env::var(k).ok())
                .expect("HYDRA_TEST_DATABASE_URL must be a valid connection string");
            let mut admin = format!(
                "host={} port={} user={}",
                params.host, params.port, params.user
            );
            if let Some(pw) = params.password {
                admin.push_str(&format!(" password='{}'", pw.expose()));
            }
            return TestPg {
                dir: None,
                bin: bin_dir(),
                as_postgres: false,
                admin,
                port: params.port,
                ca_cert: None,
            };
        }
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("hb-pg-")
            .tempdir()
            .expect("creating a temporary directory");
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{ADMIN_PASSWORD}\n")).expect("writing the password file");
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&pwfile));
        }
        let mut initdb = cmd(&bin, "initdb", as_postgres);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--no-sync", "--auth-local=trust"])
            .arg("--auth-host=scram-sha-256")
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C"]);
        run(&mut initdb);
        let port = free_port();
        let mut opts = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off",
            dir.path().display()
        );
        let ca_cert = tls.then(|| {
            let (ca, cert, key) = make_certificates(dir.path());
            if as_postgres {
                run(Command::new("chown").arg("postgres:").arg(&cert).arg(&key));
            }
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
            ca
        });
        let mut ctl = cmd(&bin, "pg_ctl", as_postgres);
        ctl.arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(opts)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "start"]);
        run(&mut ctl);
        let pg = TestPg {
            admin: format!("host={} port={port} user=postgres", dir.path().display()),
            dir: Some(dir),
            bin,
            as_postgres,
            port,
            ca_cert,
        };
        pg.psql(
            "postgres",
            &format!("CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'"),
        );
        pg
    }

    /// Creates a fresh, empty database and returns its superuser connection string.
    pub(crate) fn database(&self) -> String {
        let name = format!(
            "hb_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.conninfo(&name)
    }

    /// The superuser connection string for `dbname`.
    pub(crate) fn conninfo(&self, dbname: &str) -> String {
        format!("{} dbname={dbname}", self.admin)
    }

    /// The README's recipe for a role that can only read, applied to the `reader` role in
    /// `dbname`; returns that role's connection string (what the tool should be given).
    pub(crate) fn grant_reader(&self, dbname: &str) -> String {
        self.psql(
            dbname,
            &format!(
                "GRANT CONNECT ON DATABASE {dbname} TO reader; \
                 GRANT USAGE ON SCHEMA public TO reader; \
                 GRANT SELECT ON schemaversion, builds, buildsteps, buildstepoutputs, jobsets, \
                 jobsetevals, systemstatus TO reader"
            ),
        );
        self.reader_conninfo(dbname)
    }

    /// The `reader` role's connection string for `dbname` (no grants made).
    pub(crate) fn reader_conninfo(&self, dbname: &str) -> String {
        let host = self
            .admin
            .split_whitespace()
            .filter(|kv| kv.starts_with("host=") || kv.starts_with("port="))
            .collect::<Vec<_>>()
            .join(" ");
        format!("{host} user=reader password='{READER_PASSWORD}' dbname={dbname}")
    }

    /// Runs SQL through psql as the superuser; panics with psql's message on failure.
    pub(crate) fn psql(&self, dbname: &str, sql: &str) -> String {
        let out = self.psql_output(dbname, sql);
        assert!(
            out.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub(crate) fn psql_output(&self, dbname: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .arg(self.conninfo(dbname))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("running psql")
    }

    pub(crate) fn data_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("data"))
    }

    /// Stops the server with `pg_ctl stop -m MODE` (`fast`: backends are told to end;
    /// `immediate`: they are killed, as in a crash), waiting until it is down. Panics on a
    /// server the tests did not start.
    pub(crate) fn stop(&self, mode: &str) {
        let data = self
            .data_dir()
            .expect("only a server the tests started can be stopped");
        run(cmd(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(data)
            .args(["-m", mode, "-w", "stop"]));
    }

    /// A hot standby of this server: `pg_basebackup -R` of its data, started read-only on a
    /// port of its own, replicating from it. Its databases and roles are this server's.
    pub(crate) fn standby(&self) -> TestPg {
        let dir = self
            .dir
            .as_ref()
            .expect("only a server the tests started can have a standby");
        let sdir = tempfile::Builder::new()
            .prefix("hb-pg-standby-")
            .tempdir()
            .expect("creating a temporary directory");
        if self.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(sdir.path()));
        }
        let data = sdir.path().join("data");
        run(cmd(&self.bin, "pg_basebackup", self.as_postgres)
            .arg("-h")
            .arg(dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
                "-D",
            ])
            .arg(&data));
        let port = free_port();
        run(cmd(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!(
                "-k {} -p {port} -c listen_addresses=127.0.0.1 -c hot_standby=on",
                sdir.path().display()
            ))
            .arg("-l")
            .arg(sdir.path().join("log"))
            .args(["-w", "start"]));
        TestPg {
            admin: format!("host={} port={port} user=postgres", sdir.path().display()),
            dir: Some(sdir),
            bin: self.bin.clone(),
            as_postgres: self.as_postgres,
            port,
            ca_cert: None,
        }
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        if let Some(data) = self.data_dir() {
            let _ = cmd(&self.bin, "pg_ctl", self.as_postgres)
                .arg("-D")
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// The newest installed PostgreSQL's binaries (Debian keeps them out of PATH), or
/// `HYDRA_TEST_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HYDRA_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        _ => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no pg_config): \
             apt-get install postgresql, or set HYDRA_TEST_DATABASE_URL"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn cmd(bin: &Path, tool: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(c: &mut Command) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate it signed for `localhost` (EC keys: quick to make).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .args(["-days", "2", "-subj", "/CN=hydra-bottleneck test CA"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=localhost"]));
    std::fs::write(p("ext"), "subjectAltName=DNS:localhost\n").expect("writing ext file");
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext"))
        .arg("-out")
        .arg(p("server.crt")));
    run(Command::new("chmod").arg("600").arg(p("server.key")));
    (p("ca.crt"), p("server.crt"), p("server.key"))
}

/// A loopback port nothing listened on a moment ago: for a server to start on, or for a
/// client to find closed.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}
