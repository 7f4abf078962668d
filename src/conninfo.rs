//! Connection strings as psql takes them: a libpq URL (`postgresql://user@host:5432/hydra?sslmode=require`)
//! or a `key=value` string (`host=db dbname=hydra user=reader`), completed from the PG* environment
//! variables and `~/.pgpass` the way libpq does, and shown to people only redacted.
//!
//! We parse these ourselves instead of handing them to tokio-postgres because its parser knows
//! neither the environment, nor `.pgpass`, nor `sslmode=verify-ca|verify-full` and `sslrootcert`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// A password, never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// libpq's `sslmode` values. `prefer` and `require` encrypt without checking the certificate
/// (unless `sslrootcert` is given, as libpq does); `verify-ca` checks the chain; `verify-full`
/// the chain and the host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str, from_url: bool) -> Result<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            // `allow` means "plain first, TLS if refused"; reading history gains nothing from the
            // difference, so it is treated as `prefer`.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Conninfo(format!(
                    "sslmode{} is not one of disable, allow, prefer, require, verify-ca, verify-full",
                    quoted(other, from_url)
                )));
            }
        })
    }
}

/// Everything needed to connect, after the string, the environment and the defaults are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnParams {
    /// A host name, an IP address, or (starting with `/`) a unix-socket directory.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<Secret>,
    /// Without a password: the password file (`passfile`, `PGPASSFILE`, `~/.pgpass`), read only
    /// if the server asks for a password ([`ConnParams::password_from_file`]).
    pub passfile: Option<PathBuf>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
}

impl ConnParams {
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// The connection as people may see it: no password, ever.
    pub fn redacted(&self) -> String {
        format!(
            "host={} port={} dbname={} user={}",
            self.host, self.port, self.dbname, self.user
        )
    }
}

impl std::fmt::Display for ConnParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The keys we understand; libpq has more, which we reject rather than silently ignore.
const KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "passfile",
];

/// Parses a connection string into its key/value pairs (URL or key=value form). Errors name the
/// offending part but never repeat a password.
pub fn parse(input: &str) -> Result<BTreeMap<String, String>> {
    let s = input.trim();
    // Schemes are case-insensitive (RFC 3986), so `POSTGRESQL://` is a URL too, never a key=value
    // string whose error would quote it.
    let map = if let Some(rest) = crate::redact::strip_scheme(s, "postgresql")
        .or_else(|| crate::redact::strip_scheme(s, "postgres"))
    {
        if password_runs_past_authority(rest) {
            return Err(Error::Conninfo(
                "the URL's user:password seems to hold an unescaped `/`, `?`, `#` or `@`: \
                 percent-encode them (%2F, %3F, %23, %40)"
                    .into(),
            ));
        }
        parse_url(rest)?
    } else if s.contains("://") {
        return Err(Error::Conninfo(
            "only postgresql:// and postgres:// URLs are connection strings".into(),
        ));
    } else {
        parse_keywords(s)?
    };
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(Error::Conninfo(format!(
                "unknown parameter {} (known: {})",
                shown_key(key),
                KEYS.join(", ")
            )));
        }
    }
    Ok(map)
}

/// True when an `@` comes after the end of the URL's authority (its first `/`, `?` or `#`)
/// other than in the value of a known `?key=value` parameter (`?user=me@server`). Such an
/// `@` is most likely the end of a user:password holding an unescaped `/`, `?`, `#` or `@`:
/// parsed as written, pieces of the password would become the host, port, database or a
/// parameter, and an error naming that piece would show it.
fn password_runs_past_authority(rest: &str) -> bool {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let query = rest.find('?');
    rest.match_indices('@')
        .map(|(at, _)| at)
        .filter(|&at| at > end)
        .any(|at| {
            let Some(q) = query.filter(|&q| q < at) else {
                return true;
            };
            let pair_start = rest[..at].rfind('&').filter(|&a| a > q).unwrap_or(q) + 1;
            match rest[pair_start..at].split_once('=') {
                Some((key, _)) => !KEYS.contains(&key),
                None => true,
            }
        })
}

fn parse_url(rest: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            match userinfo.split_once(':') {
                Some((u, p)) => {
                    put(&mut map, "user", &percent_decode(u)?);
                    map.insert("password".into(), percent_decode(p)?);
                }
                None => put(&mut map, "user", &percent_decode(userinfo)?),
            }
            hp
        }
        None => authority,
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| Error::Conninfo("unterminated [IPv6 address] in URL".into()))?;
        put(&mut map, "host", h);
        if let Some(p) = after.strip_prefix(':') {
            put(&mut map, "port", p);
        } else if !after.is_empty() {
            return Err(Error::Conninfo(
                "unexpected text after the [IPv6 address] in the URL".into(),
            ));
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => {
                put(&mut map, "host", &percent_decode(h)?);
                put(&mut map, "port", p);
            }
            None => put(&mut map, "host", &percent_decode(hostport)?),
        }
    }
    if let Some(db) = path {
        put(&mut map, "dbname", &percent_decode(db)?);
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        // Not shown: in a URL written without escapes it might be the tail of a password.
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            Error::Conninfo("a URL parameter has no value (expected ?name=value&…)".into())
        })?;
        map.insert(percent_decode(k)?, percent_decode(v)?);
    }
    Ok(map)
}

fn put(map: &mut BTreeMap<String, String>, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.into(), value.into());
    }
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Conninfo("bad %-escape in URL".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Conninfo("URL is not UTF-8 after decoding".into()))
}

fn parse_keywords(s: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let mut chars = s.chars().peekable();
    // Set after a password: one with a space left unquoted, or a quote left unescaped, leaves
    // its tail as the next "key", which an error must not show.
    let mut after_password = false;
    let password_tail = || {
        Error::Conninfo(
            "the text after the password is not key=value: quote a password with spaces \
             (password='…') and escape quotes and backslashes in it (\\' and \\\\)"
                .into(),
        )
    };
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(map);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            if after_password {
                return Err(password_tail());
            }
            return Err(Error::Conninfo(format!(
                "{} has no `=value` (expected key=value pairs or a postgresql:// URL)",
                shown_key(&key)
            )));
        }
        if after_password && !KEYS.contains(&key.as_str()) {
            return Err(password_tail());
        }
        // libpq allows spaces after `=`, so `port= password='…'` gives `port` the next pair as
        // its value and parses what follows as more pairs; that is never meant, and the words
        // it cuts loose may be pieces of a password, so it is refused (checked below).
        let mut spaced = false;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            spaced = true;
            chars.next();
        }
        let mut value = String::new();
        after_password = key == "password";
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(Error::Conninfo(format!(
                            "unterminated quoted value for {}",
                            shown_key(&key)
                        )));
                    }
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(Error::Conninfo(format!(
                                "unterminated quoted value for {}",
                                shown_key(&key)
                            )));
                        }
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
            if spaced && value.contains('=') {
                return Err(Error::Conninfo(format!(
                    "{} is followed by a space and another key=value pair, which would become \
                     its value; quote an empty value (key='')",
                    shown_key(&key)
                )));
            }
        }
        map.insert(key, value);
    }
}

/// A key for an error message, in backquotes when it looks like one (a word of letters, digits
/// and `_`); anything else may be a piece of a password that a stray quote or space cut loose
/// (`host='db password='…`), and is not shown.
fn shown_key(key: &str) -> String {
    if !key.is_empty()
        && key.len() <= 32
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        format!("`{key}`")
    } else {
        "a word".into()
    }
}

/// A value for an error message: ` `value`` after the word it follows, or nothing when it may
/// hold a piece of a password. That is any value of a URL (whose unescaped password may spill
/// into the port or a parameter) and a value holding a `=` (which swallowed the next pair, as in
/// `port= password=…`, where the space after `=` is allowed).
fn quoted(value: &str, from_url: bool) -> String {
    if from_url || value.contains('=') {
        String::new()
    } else {
        format!(" `{value}`")
    }
}

/// Merges a parsed string with the environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
/// PGSSLMODE, PGSSLROOTCERT, PGCONNECT_TIMEOUT, PGPASSFILE) and libpq's defaults; a password still
/// missing is looked up in the password file as libpq does. `env` is a parameter so tests need
/// not touch the process environment.
pub fn resolve(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnParams> {
    let map = parse(input)?;
    let from_url = input.contains("://");
    let get = |key: &str, var: &str| -> Option<String> {
        map.get(key)
            .cloned()
            .or_else(|| env(var).filter(|v| !v.is_empty()))
    };
    let host = get("host", "PGHOST")
        .or_else(|| get("hostaddr", "PGHOSTADDR"))
        .unwrap_or_else(default_socket_dir);
    if host.contains(',') {
        return Err(Error::Conninfo(
            "several hosts are not supported; name the one to read from".into(),
        ));
    }
    let port = match get("port", "PGPORT") {
        None => 5432,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            Error::Conninfo(format!("port{} is not a port number", quoted(&p, from_url)))
        })?,
    };
    let user = get("user", "PGUSER")
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "postgres".into());
    let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
    let sslmode = match get("sslmode", "PGSSLMODE") {
        Some(m) => SslMode::parse(&m, from_url)?,
        None => SslMode::Prefer,
    };
    let sslrootcert = get("sslrootcert", "PGSSLROOTCERT").map(PathBuf::from);
    let connect_timeout = match get("connect_timeout", "PGCONNECT_TIMEOUT") {
        None => None,
        Some(t) => {
            let secs = t.parse::<u64>().map_err(|_| {
                Error::Conninfo(format!(
                    "connect_timeout{} is not a number of seconds",
                    quoted(&t, from_url)
                ))
            })?;
            // libpq treats 0 as "wait forever" and raises 1 to 2 seconds.
            (secs > 0).then(|| Duration::from_secs(secs.max(2)))
        }
    };
    let password = get("password", "PGPASSWORD").map(Secret);
    // Not read now: most servers a reader meets (a unix socket with peer authentication) ask
    // for no password, and a file never read cannot hang or fail the run.
    let passfile = match password {
        Some(_) => None,
        None => get("passfile", "PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass"))),
    };
    Ok(ConnParams {
        host,
        port,
        dbname,
        user,
        password,
        passfile,
        sslmode,
        sslrootcert,
        connect_timeout,
    })
}

/// The most read of a password file: a line per server and role is under a hundred bytes, so
/// 1 MiB is thousands of them; libpq reads any size, but nothing that large is a `.pgpass`.
const PASSFILE_CAP: u64 = 1 << 20;

impl ConnParams {
    /// The password for this connection from the password file, as libpq finds it: the first
    /// matching line, from a regular file that only its owner may read or write (libpq ignores
    /// one with group or world access, and so do we). `Err` says why there is none, for the
    /// one line that reports a server asking for a password; it never holds a password.
    pub fn password_from_file(&self) -> std::result::Result<Secret, String> {
        use std::os::unix::fs::PermissionsExt;
        let Some(path) = &self.passfile else {
            return Err("no password file".into());
        };
        let shown = path.display();
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("no password file {shown}"));
            }
            Err(e) => return Err(format!("password file {shown}: {e}")),
        };
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "password file {shown} has group or world access and was ignored (as libpq \
                 does); permissions should be u=rw (0600) or less"
            ));
        }
        // Not a regular file (a device, a FIFO) or too large: refused by the reader, by name.
        let text = crate::readfile::read_capped_string(path, "password file", PASSFILE_CAP)
            .map_err(|e| e.to_string())?;
        pgpass_lookup(&text, self)
            .map(Secret)
            .ok_or_else(|| format!("no line of password file {shown} matches {self}"))
    }
}

/// libpq's compiled-in socket directory on Debian, or `/tmp` where that does not exist.
fn default_socket_dir() -> String {
    if std::path::Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql".into()
    } else {
        "/tmp".into()
    }
}

/// Finds the password for `params` in `.pgpass` text: `host:port:db:user:password` lines, `*`
/// matching anything, `\` escaping `:` and `\`; a unix socket matches the host `localhost`.
fn pgpass_lookup(text: &str, params: &ConnParams) -> Option<String> {
    let host = if params.is_unix_socket() {
        "localhost"
    } else {
        params.host.as_str()
    };
    let port = params.port.to_string();
    let wanted = [
        host,
        port.as_str(),
        params.dbname.as_str(),
        params.user.as_str(),
    ];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_and_keywords_give_the_same_parameters() {
        let a = resolve(
            "postgresql://reader:s%40cret@db.example:6543/hydra?sslmode=require",
            &no_env,
        )
        .unwrap();
        let b = resolve(
            "host=db.example port=6543 dbname=hydra user=reader password='s@cret' sslmode=require",
            &no_env,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.password.as_ref().unwrap().expose(), "s@cret");
        assert_eq!(a.sslmode, SslMode::Require);
    }

    #[test]
    fn environment_fills_what_the_string_leaves_out() {
        let env = |k: &str| match k {
            "PGHOST" => Some("/run/pg".to_string()),
            "PGPORT" => Some("5433".into()),
            "PGUSER" => Some("hydra".into()),
            "PGPASSWORD" => Some("pw".into()),
            _ => None,
        };
        let p = resolve("dbname=x", &env).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str()),
            ("/run/pg", 5433, "hydra")
        );
        assert!(p.is_unix_socket());
        let over = resolve("user=other", &env).unwrap();
        assert_eq!(over.user, "other");
        assert_eq!(over.dbname, "other");
    }

    #[test]
    fn the_password_never_shows() {
        let p = resolve("postgresql://u:hunter2@h/db", &no_env).unwrap();
        assert!(!format!("{p} {p:?} {}", p.redacted()).contains("hunter2"));
    }

    #[test]
    fn malformed_strings_are_clear_errors() {
        for bad in [
            "host",
            "host=a port=notaport",
            "password='unterminated",
            "http://x",
            "postgresql://[::1",
            "sslmode=sometimes",
            "colour=blue",
            "postgresql://h/db?x",
            "postgresql://u:%zz@h/db",
        ] {
            let err = resolve(bad, &no_env).unwrap_err().to_string();
            assert!(err.starts_with("connection string:"), "{bad}: {err}");
        }
    }

    #[test]
    fn no_error_shows_a_piece_of_a_password_written_without_escapes() {
        // Each string holds the password `se/cr?et` or `se cr'et` written as it should not be;
        // read as written, a piece of it becomes a port, a parameter or a key, which the
        // error must not show.
        for bad in [
            "postgresql://reader:se/cr?et@db/hydra",
            "postgresql://reader:se/cret@db/hydra",
            "postgresql://reader:se?cret@db/hydra",
            "postgresql://reader:se?port=cret@db/hydra",
            "postgresql://reader:se#cret@db/hydra",
            "host=db password=se cret dbname=hydra",
            "host=db password=se cret",
            "host=db password='se'cret' dbname=hydra",
            "host=db port= password=secret",
            // Found by the fuzzer: `port=` swallows `password='se`, and the rest of the
            // password became a second `port`.
            "host=db port= password='se port=5432cret'",
            "host=db port= password='se sslmode=cret'",
        ] {
            let err = resolve(bad, &no_env).unwrap_err().to_string();
            assert!(err.starts_with("connection string:"), "{bad}: {err}");
            for piece in ["cr", "et", "cret", "secret"] {
                assert!(!err.contains(piece), "{bad}: `{piece}` shown in: {err}");
            }
        }
        // Spaces around `=` are libpq's, and still parse.
        let p = resolve("host = db port = 6543 password = 'a b'", &no_env).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("db", 6543));
        assert_eq!(p.password.as_ref().unwrap().expose(), "a b");
        // An `@` in a known parameter's value is no password: it still parses.
        let p = resolve("postgresql://db:5432/hydra?user=me@server", &no_env).unwrap();
        assert_eq!(p.user, "me@server");
        let p = resolve(
            "postgresql://db/hydra?sslmode=disable&user=me@server",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            (p.user.as_str(), p.sslmode),
            ("me@server", SslMode::Disable)
        );
        // Values of key=value strings are still shown when they are wrong, being no password.
        let err = resolve("host=db sslmode=sometimes", &no_env).unwrap_err();
        assert!(err.to_string().contains("`sometimes`"), "{err}");
    }

    #[test]
    fn pgpass_matches_with_wildcards_and_escapes() {
        let text = "# comment\nother:*:*:*:no\n*:5432:hydra:re\\:ader:pa\\:ss\n";
        let p = ConnParams {
            host: "db".into(),
            port: 5432,
            dbname: "hydra".into(),
            user: "re:ader".into(),
            password: None,
            passfile: None,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            connect_timeout: None,
        };
        assert_eq!(pgpass_lookup(text, &p).as_deref(), Some("pa:ss"));
    }
}
