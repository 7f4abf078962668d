//! The one loopback HTTP server of the tests. [`serve`] answers each request with what a
//! test's function returns for it: a status document, a `/metrics` text, a binary cache's file, an error, or a
//! misbehaving answer (late, paced, cut short, longer than announced). The server logs every
//! request and counts connections, for tests that check what the tool asked, and how often.
//!
//! It speaks just enough HTTP/1.1 for the tool's client: one request per connection, closed
//! after the answer (and said so in `Connection: close`).

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The connection it came on, counted from 0 in the order accepted.
    pub(crate) n: usize,
    /// The path asked for, without the query.
    pub(crate) path: String,
    /// The request target as sent, query included.
    pub(crate) target: String,
    /// Headers in the order sent: names in lower case, values trimmed.
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `N` of a `Range: bytes=N-` header (the only form the tool sends).
    pub(crate) fn range_from(&self) -> Option<usize> {
        self.header("range")?
            .strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse()
            .ok()
    }
}

/// What the head says of the body's length.
#[derive(Debug, Clone, Copy)]
enum Length {
    /// The length of what is sent.
    Exact,
    /// This many bytes, whatever is sent.
    Claimed(usize),
    /// No `Content-Length`: the body ends when the connection closes.
    Absent,
}

/// An answer, built from [`Response::new`] or one of its shorthands.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body is sent this many times over (a stream of one piece).
    repeat: usize,
    length: Length,
    /// Waited after reading the request, before answering.
    delay: Duration,
    /// The body is written in pieces of this many bytes, with this pause after each.
    pace: Option<(usize, Duration)>,
}

impl Response {
    /// `status reason`, with an empty body.
    pub(crate) fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: reason.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            repeat: 1,
            length: Length::Exact,
            delay: Duration::ZERO,
            pace: None,
        }
    }

    /// `200 OK` with `body`.
    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, "OK").body(body)
    }

    /// `200 OK` with `body` as `application/json`, as the queue runner's status is served.
    pub(crate) fn json(body: impl Into<Vec<u8>>) -> Response {
        Response::ok(body).header("Content-Type", "application/json")
    }

    /// `200 OK` with `body` as the Prometheus text format, with the `Content-Type` the Rust
    /// queue runner's `/metrics` sends (NixOS/hydra `server/http.rs` `handler::metrics::get`).
    pub(crate) fn metrics(body: impl Into<Vec<u8>>) -> Response {
        Response::ok(body).header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
    }

    /// `404 Not Found`, empty.
    pub(crate) fn not_found() -> Response {
        Response::new(404, "Not Found")
    }

    /// `data` as a GET with the request's `Range: bytes=N-` asks for it: all of it (200), from
    /// byte N on (206), or nothing when N is past its end (416).
    pub(crate) fn ranged(data: &[u8], req: &Request) -> Response {
        let len = data.len();
        match req.range_from() {
            None => Response::ok(data),
            Some(n) if n >= len => Response::new(416, "Range Not Satisfiable")
                .header("Content-Range", &format!("bytes */{len}")),
            Some(n) => Response::new(206, "Partial Content")
                .header("Content-Range", &format!("bytes {n}-{}/{len}", len - 1))
                .body(&data[n..]),
        }
    }

    /// `200 OK` without a length, then `piece` every `every` until the client goes or `total`
    /// bytes were sent (`usize::MAX`: until the client goes).
    pub(crate) fn trickle(piece: &[u8], every: Duration, total: usize) -> Response {
        let mut r = Response::ok(piece).no_length();
        r.repeat = total.div_ceil(piece.len());
        r.pace = Some((piece.len(), every));
        r
    }

    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Announces `len` bytes whatever the body holds (a body cut short, when more).
    pub(crate) fn claim_length(mut self, len: usize) -> Response {
        self.length = Length::Claimed(len);
        self
    }

    /// Announces the body as it is, then sends only its first half and closes.
    pub(crate) fn cut_in_half(mut self) -> Response {
        let whole = self.body.len();
        self.body.truncate(whole / 2);
        self.claim_length(whole)
    }

    /// No `Content-Length`: the body is whatever comes before the connection closes.
    pub(crate) fn no_length(mut self) -> Response {
        self.length = Length::Absent;
        self
    }

    /// Answers only after `delay`.
    pub(crate) fn delay(mut self, delay: Duration) -> Response {
        self.delay = delay;
        self
    }

    /// Writes the body in pieces of `piece` bytes, pausing `every` after each.
    pub(crate) fn pace(mut self, piece: usize, every: Duration) -> Response {
        self.pace = Some((piece, every));
        self
    }

    fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        std::thread::sleep(self.delay);
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let len = match self.length {
            Length::Exact => Some(self.body.len().saturating_mul(self.repeat)),
            Length::Claimed(n) => Some(n),
            Length::Absent => None,
        };
        if let Some(n) = len {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes())?;
        for _ in 0..self.repeat {
            match self.pace {
                None => stream.write_all(&self.body)?,
                Some((piece, every)) => {
                    for chunk in self.body.chunks(piece.max(1)) {
                        stream.write_all(chunk)?;
                        std::thread::sleep(every);
                    }
                }
            }
        }
        stream.flush()
    }
}

/// A running server; it serves until the test process ends.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests read so far, in the order read.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// The connections accepted so far (one request each).
    pub(crate) fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Serves on 127.0.0.1 (a free port), answering each request with `answer(request)`, each
/// connection on a thread of its own.
pub(crate) fn serve(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let (log2, connections2) = (log.clone(), connections.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let n = connections2.fetch_add(1, Ordering::SeqCst);
            let (answer, log) = (answer.clone(), log2.clone());
            std::thread::spawn(move || {
                let _ = exchange(stream, n, &*answer, &log);
            });
        }
    });
    Server {
        addr,
        log,
        connections,
    }
}

/// Reads the request on connection `n`, logs it and writes the answer. A connection closed
/// before its request line gets no answer.
fn exchange(
    mut stream: TcpStream,
    n: usize,
    answer: &(dyn Fn(&Request) -> Response + Send + Sync),
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut req = Request {
        n,
        path: target.split('?').next().unwrap_or("/").to_string(),
        target,
        headers: Vec::new(),
    };
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            req.headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    log.lock().unwrap().push(req.clone());
    answer(&req).write_to(&mut stream)?;
    stream.shutdown(Shutdown::Both)
}
