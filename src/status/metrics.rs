//! The Prometheus text exposition format, version 0.0.4 (what a `/metrics` URL serves with
//! `Content-Type: text/plain; version=0.0.4`): a strict parser into [`Exposition`], and the
//! renderer of such a value back into the format.
//!
//! Written from the format's specification (prometheus/docs,
//! `content/docs/instrumenting/exposition_formats.md`, "Text format details"), and strict where
//! it says "must":
//!
//! - lines end in a line feed, the last one too (so a body cut short is refused, not read as
//!   fewer metrics); a carriage return at a line's end is refused rather than read into a value;
//! - `# HELP name docstring` (escapes `\\` and `\n` only) and `# TYPE name type` (exactly two
//!   tokens; `counter`, `gauge`, `histogram`, `summary` or `untyped`), at most one of each per
//!   name, both before the name's first sample; other `#` lines are comments;
//! - a sample is `name{label="value",…} value [timestamp]`: names as PromQL has them
//!   (`[a-zA-Z_:][a-zA-Z0-9_:]*`, labels `[a-zA-Z_][a-zA-Z0-9_]*`), label values with the escapes
//!   `\\`, `\"` and `\n` and no other, a label at most once per sample, a trailing comma allowed;
//!   the value a float as Go's `strconv.ParseFloat` reads it (`NaN`, `+Inf`, `-Inf` included;
//!   Go's hexadecimal floats, which no exporter writes, are refused), the timestamp an `int64` of
//!   milliseconds;
//! - a metric's lines form one uninterrupted group, and each series (name and label set) appears
//!   once;
//! - a histogram `x` is its samples `x_bucket{le=…}`, `x_sum` and `x_count`, its buckets in
//!   increasing order of `le` ending in `le="+Inf"`, whose count equals `x_count`; a summary `x`
//!   is `x{quantile=…}` in increasing order of quantile, `x_sum` and `x_count`.
//!
//! Where the specification is loose, this parser is as loose as Prometheus's own: blanks and tabs
//! anywhere between tokens (also inside the braces) and an empty label set `{}`.
//!
//! It is bounded, whatever the input: the text at most [`MAX_TEXT`], a line at most
//! [`MAX_LINE`], a sample at most [`MAX_LABELS`] labels, the whole at most [`MAX_SAMPLES`]
//! samples. Every refusal is one [`ParseError`]: the line's number and what is wrong with it, in
//! one line (an offending token is quoted, shortened and escaped, never printed raw).
//!
//! What the queue runners' names mean is `status::exporters`; this module knows only the format.
//!
//! Speed (`benches/metrics.rs`): the Rust runner's `/metrics` for hydra.nixos.org's size (40
//! builders, 10 systems, 800 jobsets: 2,433 samples, 195 KiB) parses in 0.80 ms, **3.0 million
//! samples a second**, and parses and reads into a `Status` in 1.05 ms (2.3 million a second);
//! measured with `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo bench --profile dev --bench metrics` (the
//! crate at opt-level 3 beside the test build's dependencies, debug assertions on) on 2 cores
//! shared with other builds (load average 3.7), so a figure for the worse case.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use serde::Serialize;

/// The largest text read: the bound on any status body ([`super::fetch::MAX_BODY`], 16 MiB).
/// The Rust runner's `/metrics` for 40 machines is about 250 KiB, and hydra.nixos.org's, with a
/// few thousand jobsets (two samples each), a few MiB at most.
pub const MAX_TEXT: usize = super::fetch::MAX_BODY as usize;

/// The longest line. The longest an exporter of Hydra writes is a sample of a jobset or a
/// store-URI label, a few hundred bytes; a line past 64 KiB is not an exposition (a binary, or a
/// minified JSON document served by mistake) and is refused at once rather than scanned.
pub const MAX_LINE: usize = 64 * 1024;

/// The most labels on one sample. Both exporters put at most two on a sample (`machine_type` and
/// `le`); 64 leaves room for any relabelling and bounds the duplicate-label check, which compares
/// a sample's labels pairwise.
pub const MAX_LABELS: usize = 64;

/// The most samples in one text. The Rust runner with 1,000 machines and 10,000 jobsets writes
/// about 30,000; a million is far past that and keeps the parsed value under about 200 MB
/// whatever the text holds.
pub const MAX_SAMPLES: usize = 1_000_000;

/// A metric's type, as its `# TYPE` line says (`untyped` without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" => Kind::Untyped,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }
}

/// Which of a metric's samples a line is: its own name, or a histogram's or summary's
/// `_bucket`, `_sum` or `_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffix {
    None,
    Bucket,
    Sum,
    Count,
}

impl Suffix {
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
        }
    }
}

/// One sample line.
#[derive(Debug, Clone)]
pub struct Sample {
    pub suffix: Suffix,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    /// Where it was read (1-based); 0 for a sample made in code.
    pub line: usize,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Two samples are the same when their suffix, labels (in order), value (NaN equal to NaN) and
/// timestamp are; where they were read is not part of a sample.
impl PartialEq for Sample {
    fn eq(&self, other: &Sample) -> bool {
        self.suffix == other.suffix
            && self.labels == other.labels
            && (self.value == other.value || (self.value.is_nan() && other.value.is_nan()))
            && self.timestamp_ms == other.timestamp_ms
    }
}

/// A metric: its name, type, docstring and samples, in the order written.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

impl Family {
    /// The name a sample of this family is written under (`x_bucket` for a histogram's bucket).
    pub fn sample_name(&self, s: &Sample) -> String {
        format!("{}{}", self.name, s.suffix.as_str())
    }

    /// The value of the family's one unlabelled sample (a plain gauge or counter).
    pub fn value(&self) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.suffix == Suffix::None && s.labels.is_empty())
            .map(|s| s.value)
    }
}

/// A whole text: its metrics in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Sample lines in all.
    pub fn samples(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// Why a text is not an exposition: the line (1-based) and the reason, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Whether a `Content-Type` names this format: `text/plain` with `version=0.0.4` (any case,
/// any spacing, other parameters such as `charset` allowed).
pub fn is_content_type(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let plain = parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("text/plain"));
    plain
        && parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("version") && v.trim().trim_matches('"') == "0.0.4"
            })
        })
}

/// Whether a text looks like this format rather than JSON: its first non-blank character starts
/// a comment or a metric name. (A JSON document starts with `{`, an HTML error page with `<`.)
pub fn looks_like(text: &str) -> bool {
    text.trim_start()
        .bytes()
        .next()
        .is_some_and(|b| b == b'#' || is_name_start(b))
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A token as an error message shows it: at most 40 characters, escaped (`{:?}`), so that no
/// control character or line break reaches the terminal.
fn shown(s: &str) -> String {
    const MAX: usize = 40;
    let mut cut: String = s.chars().take(MAX).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// FNV-1a: the parser's maps are keyed by short names and by hashes it computed itself, from a
/// text it has already bounded, so a fast hash serves better than the standard SipHash, whose
/// resistance to chosen collisions buys nothing here (a collision costs a comparison, and a
/// text is at most [`MAX_SAMPLES`] samples).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

fn fnv(x: impl Hash) -> u64 {
    let mut h = Fnv::default();
    x.hash(&mut h);
    h.finish()
}

/// An order-independent hash of a label set, leaving out label `skip`: a sum of each label's
/// hash.
fn labels_hash(labels: &[(String, String)], skip: &str) -> u64 {
    labels
        .iter()
        .filter(|(n, _)| n != skip)
        .fold(0u64, |acc, l| acc.wrapping_add(fnv(l)))
}

/// Whether two label sets are the same once label `skip` is left out (order aside; a sample
/// has each label once).
fn same_labels(a: &[(String, String)], b: &[(String, String)], skip: &str) -> bool {
    let count = |l: &[(String, String)]| l.iter().filter(|(n, _)| n != skip).count();
    count(a) == count(b) && a.iter().filter(|(n, _)| n != skip).all(|l| b.contains(l))
}

/// Parses a whole text. Every refusal names its line.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    if text.len() > MAX_TEXT {
        // The line the cap falls on, so that even this error has a place.
        let line = text.as_bytes()[..MAX_TEXT]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return Err(ParseError {
            line,
            reason: format!(
                "the text is larger than {} MiB; not a /metrics body?",
                MAX_TEXT / (1024 * 1024)
            ),
        });
    }
    let mut p = Parser::default();
    let body = match text.strip_suffix('\n') {
        Some(b) => b,
        None if text.is_empty() => "",
        None => {
            return Err(ParseError {
                line: text.split('\n').count(),
                reason: "the last line does not end with a line feed: the text was cut short?"
                    .into(),
            });
        }
    };
    if !text.is_empty() {
        for (i, line) in body.split('\n').enumerate() {
            let no = i + 1;
            p.line(no, line)
                .map_err(|reason| ParseError { line: no, reason })?;
        }
    }
    p.finish()
}

#[derive(Default)]
struct Parser<'a> {
    families: Vec<Family>,
    /// Family by name, borrowing the text.
    index: FnvMap<&'a str, usize>,
    /// Whether a family had a `# TYPE` line, and whether its group of lines has ended.
    typed: Vec<bool>,
    closed: Vec<bool>,
    current: Option<usize>,
    /// Series seen: an order-independent hash of (family, suffix, labels) → (family, sample).
    seen: FnvMap<u64, (usize, usize)>,
    samples: usize,
}

impl<'a> Parser<'a> {
    fn line(&mut self, no: usize, raw: &'a str) -> Result<(), String> {
        if raw.len() > MAX_LINE {
            return Err(format!(
                "the line is {} bytes long, more than the {} KiB a sample or comment needs; not \
                 a /metrics body?",
                raw.len(),
                MAX_LINE / 1024
            ));
        }
        let line = raw.trim_matches(|c| c == ' ' || c == '\t');
        if line.is_empty() {
            return Ok(());
        }
        if line.ends_with('\r') {
            return Err(
                "the line ends in a carriage return: the format's lines end in a line feed alone"
                    .into(),
            );
        }
        match line.strip_prefix('#') {
            Some(comment) => self.comment(comment),
            None => self.sample(no, line),
        }
    }

    fn comment(&mut self, comment: &'a str) -> Result<(), String> {
        let rest = comment.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(rest);
        match keyword {
            "HELP" => self.help(rest),
            "TYPE" => self.type_line(rest),
            // Any other comment is ignored, as the format says.
            _ => Ok(()),
        }
    }

    /// The metric name a HELP or TYPE line (`keyword`) starts with, checked, and the rest.
    fn metadata_name(keyword: &str, rest: &'a str) -> Result<(&'a str, &'a str), String> {
        let (name, rest) = split_token(rest.trim_start_matches([' ', '\t']));
        if name.is_empty() {
            return Err(format!("a {keyword} line without a metric name"));
        }
        check_metric_name(name)?;
        Ok((name, rest.trim_start_matches([' ', '\t'])))
    }

    /// The family a HELP or TYPE line (`keyword`) describes: entered, and refused when `seen`
    /// says it already had such a line or when its samples came first.
    fn metadata_family(
        &mut self,
        keyword: &str,
        name: &'a str,
        seen: impl Fn(&Self, usize) -> bool,
    ) -> Result<usize, String> {
        let f = self.family_named(name);
        self.enter(f, name)?;
        if seen(self, f) {
            return Err(format!(
                "a second {keyword} line for {}: one per metric",
                shown(name)
            ));
        }
        if !self.families[f].samples.is_empty() {
            return Err(format!(
                "the {keyword} line of {} comes after its samples: HELP and TYPE come first",
                shown(name)
            ));
        }
        Ok(f)
    }

    fn help(&mut self, rest: &'a str) -> Result<(), String> {
        let (name, doc) = Self::metadata_name("HELP", rest)?;
        let doc = unescape_help(doc)?;
        let f = self.metadata_family("HELP", name, |p, f| p.families[f].help.is_some())?;
        self.families[f].help = Some(doc);
        Ok(())
    }

    fn type_line(&mut self, rest: &'a str) -> Result<(), String> {
        let (name, rest) = Self::metadata_name("TYPE", rest)?;
        let (kind, rest) = split_token(rest);
        if kind.is_empty() {
            return Err(format!("the TYPE line of {} names no type", shown(name)));
        }
        let kind = Kind::parse(kind).ok_or_else(|| {
            format!(
                "{} is not a metric type (counter, gauge, histogram, summary or untyped)",
                shown(kind)
            )
        })?;
        if !rest.trim_start_matches([' ', '\t']).is_empty() {
            return Err(format!(
                "more after the type on the TYPE line of {}: {}",
                shown(name),
                shown(rest.trim_start_matches([' ', '\t']))
            ));
        }
        let f = self.metadata_family("TYPE", name, |p, f| p.typed[f])?;
        self.typed[f] = true;
        self.families[f].kind = kind;
        Ok(())
    }

    /// The family named exactly `name`, made (untyped, without samples) when new.
    fn family_named(&mut self, name: &'a str) -> usize {
        if let Some(&f) = self.index.get(name) {
            return f;
        }
        self.new_family(name)
    }

    fn new_family(&mut self, name: &'a str) -> usize {
        let f = self.families.len();
        self.families.push(Family {
            name: name.to_string(),
            kind: Kind::Untyped,
            help: None,
            samples: Vec::new(),
        });
        self.typed.push(false);
        self.closed.push(false);
        self.index.insert(name, f);
        f
    }

    /// Moves to family `f`: a metric's lines are one group, so a family left for another may
    /// not come back.
    fn enter(&mut self, f: usize, name: &str) -> Result<(), String> {
        if self.current == Some(f) {
            return Ok(());
        }
        if self.closed[f] {
            return Err(format!(
                "{} comes back after other metrics: a metric's lines must form one group",
                shown(name)
            ));
        }
        if let Some(c) = self.current {
            self.closed[c] = true;
        }
        self.current = Some(f);
        Ok(())
    }

    /// The family and suffix of a sample named `name`: the family of exactly that name, else a
    /// histogram's (`_bucket`, `_sum`, `_count`) or summary's (`_sum`, `_count`) by the suffix
    /// stripped, else a new untyped family.
    fn resolve(&mut self, name: &'a str) -> (usize, Suffix) {
        // The family being read is by far the most likely: look there first.
        if let Some(c) = self.current {
            let f = &self.families[c];
            if let Some(s) = suffix_of(&f.name, f.kind, name) {
                // An exact name of another family beats a suffix of this one.
                if s == Suffix::None || !self.index.contains_key(name) {
                    return (c, s);
                }
            }
        }
        if let Some(&f) = self.index.get(name) {
            return (f, Suffix::None);
        }
        for (suffix, s) in [
            ("_bucket", Suffix::Bucket),
            ("_sum", Suffix::Sum),
            ("_count", Suffix::Count),
        ] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(&f) = self.index.get(base)
                && suffix_of(base, self.families[f].kind, name) == Some(s)
            {
                return (f, s);
            }
        }
        (self.new_family(name), Suffix::None)
    }

    fn sample(&mut self, no: usize, line: &'a str) -> Result<(), String> {
        let b = line.as_bytes();
        let name_end = b.iter().position(|&c| !is_name_char(c)).unwrap_or(b.len());
        let name = &line[..name_end];
        if name.is_empty() || !is_name_start(b[0]) {
            let (tok, _) = split_token(line);
            return Err(format!("{} does not start with a metric name", shown(tok)));
        }
        let mut pos = skip_blanks(b, name_end);
        let mut labels = Vec::new();
        if b.get(pos) == Some(&b'{') {
            pos = parse_labels(line, pos + 1, &mut labels)?;
            pos = skip_blanks(b, pos);
        } else if pos == name_end && pos < b.len() {
            let (tok, _) = split_token(line);
            return Err(format!("{} is not a metric name", shown(tok)));
        }
        let (value_tok, rest) = split_token(&line[pos..]);
        if value_tok.is_empty() {
            return Err(format!("the sample of {} has no value", shown(name)));
        }
        let value = parse_float(value_tok)?;
        let rest = rest.trim_start_matches([' ', '\t']);
        let timestamp_ms = if rest.is_empty() {
            None
        } else {
            let (ts, after) = split_token(rest);
            let t = ts.parse::<i64>().map_err(|_| {
                format!(
                    "{} after the value is not a timestamp (whole milliseconds, 64-bit)",
                    shown(ts)
                )
            })?;
            let after = after.trim_start_matches([' ', '\t']);
            if !after.is_empty() {
                return Err(format!("more after the timestamp: {}", shown(after)));
            }
            Some(t)
        };

        let (f, suffix) = self.resolve(name);
        check_special_labels(&self.families[f], suffix, &labels, name)?;
        self.enter(f, name)?;
        if self.samples >= MAX_SAMPLES {
            return Err(format!(
                "more than {MAX_SAMPLES} samples; not the /metrics of one queue runner?"
            ));
        }
        self.samples += 1;

        // Each series once: an order-independent hash of the label set, checked on a match.
        let key = fnv((f, suffix, labels_hash(&labels, "")));
        let family = &mut self.families[f];
        let at = family.samples.len();
        match self.seen.get(&key) {
            Some(&(ef, ei)) if ef == f => {
                let earlier = &family.samples[ei];
                if earlier.suffix == suffix && same_labels(&earlier.labels, &labels, "") {
                    return Err(format!(
                        "{} with these labels again (first at line {}): each series appears once",
                        shown(name),
                        earlier.line
                    ));
                }
                // A true 64-bit collision of two different series: the check is skipped for
                // this line rather than refusing a valid text.
            }
            Some(_) => {}
            None => {
                self.seen.insert(key, (f, at));
            }
        }
        family.samples.push(Sample {
            suffix,
            labels,
            value,
            timestamp_ms,
            line: no,
        });
        Ok(())
    }

    /// Checks what only the whole of a histogram or summary shows, and returns the text.
    fn finish(self) -> Result<Exposition, ParseError> {
        for f in &self.families {
            match f.kind {
                Kind::Histogram => check_histogram(f)?,
                Kind::Summary => check_summary(f)?,
                _ => {}
            }
        }
        Ok(Exposition {
            families: self.families,
        })
    }
}

/// The suffix by which sample `name` belongs to family `base` of kind `kind`, if it does.
fn suffix_of(base: &str, kind: Kind, name: &str) -> Option<Suffix> {
    let rest = name.strip_prefix(base)?;
    let whole = matches!(kind, Kind::Histogram | Kind::Summary);
    match rest {
        "" => Some(Suffix::None),
        "_bucket" if kind == Kind::Histogram => Some(Suffix::Bucket),
        "_sum" if whole => Some(Suffix::Sum),
        "_count" if whole => Some(Suffix::Count),
        _ => None,
    }
}

/// `le` on a histogram's buckets and `quantile` on a summary's quantiles: present, and a float.
fn check_special_labels(
    f: &Family,
    suffix: Suffix,
    labels: &[(String, String)],
    name: &str,
) -> Result<(), String> {
    let need = match (f.kind, suffix) {
        (Kind::Histogram, Suffix::None) => {
            return Err(format!(
                "{} is a histogram: its samples are {}, {} and {}",
                shown(&f.name),
                shown(&format!("{}_bucket", f.name)),
                shown(&format!("{}_sum", f.name)),
                shown(&format!("{}_count", f.name)),
            ));
        }
        (Kind::Histogram, Suffix::Bucket) => "le",
        (Kind::Summary, Suffix::None) => "quantile",
        _ => return Ok(()),
    };
    let v = labels
        .iter()
        .find(|(n, _)| n == need)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("{} has no `{need}` label", shown(name)))?;
    parse_float(v).map_err(|_| format!("`{need}=` {} is not a number", shown(v)))?;
    Ok(())
}

/// Which of a histogram's or summary's series each sample belongs to (the label set without
/// `skip`, `le` or `quantile`), as an index into the first sample of each series.
fn groups(f: &Family, skip: &str) -> Vec<usize> {
    let mut first: FnvMap<u64, Vec<usize>> = FnvMap::default();
    let mut out = Vec::with_capacity(f.samples.len());
    let mut n = 0;
    for (i, s) in f.samples.iter().enumerate() {
        let heads = first.entry(labels_hash(&s.labels, skip)).or_default();
        let g = match heads
            .iter()
            .find(|&&h| same_labels(&f.samples[h].labels, &s.labels, skip))
        {
            Some(&h) => out[h],
            None => {
                heads.push(i);
                n += 1;
                n - 1
            }
        };
        out.push(g);
    }
    out
}

fn bound(s: &Sample, label: &str) -> f64 {
    s.label(label)
        .and_then(|v| parse_float(v).ok())
        .unwrap_or(f64::NAN)
}

fn check_histogram(f: &Family) -> Result<(), ParseError> {
    struct Group {
        first_line: usize,
        last: Option<(f64, usize)>,
        inf: Option<f64>,
        count: Option<(f64, usize)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for (s, i) in f.samples.iter().zip(self::groups(f, "le")) {
        if i == groups.len() {
            groups.push(Group {
                first_line: s.line,
                last: None,
                inf: None,
                count: None,
            });
        }
        let Some(g) = groups.get_mut(i) else {
            continue;
        };
        match s.suffix {
            Suffix::Bucket => {
                let b = bound(s, "le");
                if let Some((prev, prev_line)) = g.last
                    // Not increasing, NaN bounds included.
                    && b.partial_cmp(&prev) != Some(std::cmp::Ordering::Greater)
                {
                    return Err(ParseError {
                        line: s.line,
                        reason: format!(
                            "the bucket le={} of {} comes after le={} (line {prev_line}): \
                             buckets go in increasing order",
                            shown(s.label("le").unwrap_or("")),
                            shown(&f.name),
                            shown(&fmt_value(prev)),
                        ),
                    });
                }
                g.last = Some((b, s.line));
                if b == f64::INFINITY {
                    g.inf = Some(s.value);
                }
            }
            Suffix::Count => g.count = Some((s.value, s.line)),
            _ => {}
        }
    }
    for g in &groups {
        let Some(inf) = g.inf else {
            return Err(ParseError {
                line: g.first_line,
                reason: format!(
                    "the histogram {} has no bucket le=\"+Inf\": every histogram must have one",
                    shown(&f.name)
                ),
            });
        };
        if let Some((count, line)) = g.count
            && count != inf
            && !(count.is_nan() && inf.is_nan())
        {
            return Err(ParseError {
                line,
                reason: format!(
                    "{}_count is {} but its le=\"+Inf\" bucket {}: the two must be equal",
                    f.name,
                    fmt_value(count),
                    fmt_value(inf)
                ),
            });
        }
    }
    Ok(())
}

fn check_summary(f: &Family) -> Result<(), ParseError> {
    let mut last: FnvMap<usize, (f64, usize)> = FnvMap::default();
    for (s, key) in f.samples.iter().zip(groups(f, "quantile")) {
        if s.suffix != Suffix::None {
            continue;
        }
        let q = bound(s, "quantile");
        if let Some(&(prev, prev_line)) = last.get(&key)
            && q.partial_cmp(&prev) != Some(std::cmp::Ordering::Greater)
        {
            return Err(ParseError {
                line: s.line,
                reason: format!(
                    "the quantile {} of {} comes after {} (line {prev_line}): quantiles go in \
                     increasing order",
                    shown(s.label("quantile").unwrap_or("")),
                    shown(&f.name),
                    shown(&fmt_value(prev)),
                ),
            });
        }
        last.insert(key, (q, s.line));
    }
    Ok(())
}

/// The first token of `s` (up to a blank, a tab or the end) and what follows it.
fn split_token(s: &str) -> (&str, &str) {
    let end = s.bytes().position(is_blank).unwrap_or(s.len());
    s.split_at(end)
}

fn skip_blanks(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(|&c| is_blank(c)) {
        pos += 1;
    }
    pos
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    if b.first().is_some_and(|&c| is_name_start(c)) && b.iter().all(|&c| is_name_char(c)) {
        Ok(())
    } else {
        Err(format!("{} is not a metric name", shown(name)))
    }
}

/// A value as Go's `strconv.ParseFloat` reads it (which Rust's reading matches but for Go's
/// hexadecimal and underscored forms); a finite number beyond `f64` is refused, as Go does.
fn parse_float(tok: &str) -> Result<f64, String> {
    let v: f64 = tok
        .parse()
        .map_err(|_| format!("{} is not a number", shown(tok)))?;
    if v.is_infinite() && !tok.bytes().any(|b| b == b'i' || b == b'I') {
        return Err(format!("{} is beyond a 64-bit float", shown(tok)));
    }
    Ok(v)
}

/// Reads `label="value",…}` from `pos` (just after `{`); returns the position after `}`.
fn parse_labels(
    line: &str,
    mut pos: usize,
    labels: &mut Vec<(String, String)>,
) -> Result<usize, String> {
    let b = line.as_bytes();
    loop {
        pos = skip_blanks(b, pos);
        match b.get(pos) {
            None => return Err("the label set is not closed with `}`".into()),
            Some(b'}') => return Ok(pos + 1),
            Some(&c) if is_label_start(c) => {}
            Some(_) => {
                let (tok, _) = split_token(&line[pos..]);
                return Err(format!("{} is not a label name", shown(tok)));
            }
        }
        let start = pos;
        while b.get(pos).is_some_and(|&c| is_label_char(c)) {
            pos += 1;
        }
        let name = &line[start..pos];
        pos = skip_blanks(b, pos);
        if b.get(pos) != Some(&b'=') {
            return Err(format!("the label {} is not followed by `=`", shown(name)));
        }
        pos = skip_blanks(b, pos + 1);
        if b.get(pos) != Some(&b'"') {
            return Err(format!(
                "the value of label {} does not start with `\"`",
                shown(name)
            ));
        }
        let (value, next) = label_value(line, pos + 1)
            .map_err(|why| format!("the value of label {}: {why}", shown(name)))?;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "the label {} appears twice in one sample",
                shown(name)
            ));
        }
        if labels.len() >= MAX_LABELS {
            return Err(format!(
                "more than {MAX_LABELS} labels on one sample; not a queue runner's metric?"
            ));
        }
        labels.push((name.to_string(), value));
        pos = skip_blanks(b, next);
        match b.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Ok(pos + 1),
            None => return Err("the label set is not closed with `}`".into()),
            Some(_) => {
                let (tok, _) = split_token(&line[pos..]);
                return Err(format!(
                    "{} after the label {}: expected `,` or `}}`",
                    shown(tok),
                    shown(name)
                ));
            }
        }
    }
}

/// A quoted label value from `pos` (just after the opening `"`): the value unescaped and the
/// position after the closing `"`.
fn label_value(line: &str, pos: usize) -> Result<(String, usize), String> {
    let b = line.as_bytes();
    let rest = &b[pos..];
    // The common case, no escape: one slice. (`"` and `\` are ASCII, so a byte search never
    // lands inside a multi-byte character.)
    match rest.iter().position(|&c| c == b'"' || c == b'\\') {
        None => Err("it is not closed with `\"`".into()),
        Some(i) if rest[i] == b'"' => Ok((line[pos..pos + i].to_string(), pos + i + 1)),
        Some(i) => {
            let mut out = String::with_capacity(i + 16);
            out.push_str(&line[pos..pos + i]);
            let mut j = pos + i;
            loop {
                let k = b[j..]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\')
                    .map(|k| j + k)
                    .ok_or("it is not closed with `\"`")?;
                out.push_str(&line[j..k]);
                if b[k] == b'"' {
                    return Ok((out, k + 1));
                }
                match b.get(k + 1) {
                    Some(b'\\') => out.push('\\'),
                    Some(b'"') => out.push('"'),
                    Some(b'n') => out.push('\n'),
                    Some(_) => {
                        let esc: String = line[k..].chars().take(2).collect();
                        return Err(format!(
                            "{} is not an escape of the format (only \\\\, \\\" and \\n)",
                            shown(&esc)
                        ));
                    }
                    None => return Err("it ends in a lone backslash".into()),
                }
                j = k + 2;
            }
        }
    }
}

/// A HELP docstring unescaped: `\\` and `\n` are its only escapes.
fn unescape_help(doc: &str) -> Result<String, String> {
    if !doc.contains('\\') {
        return Ok(doc.to_string());
    }
    let mut out = String::with_capacity(doc.len());
    let mut chars = doc.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                return Err(format!(
                    "{} in a HELP line is not an escape of the format (only \\\\ and \\n)",
                    shown(&format!("\\{other}"))
                ));
            }
            None => return Err("the HELP line ends in a lone backslash".into()),
        }
    }
    Ok(out)
}

/// A value as the format writes it: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads
/// back as the same float (plain between 1e-5 and 1e16, with an exponent outside).
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v == 0.0 || (1e-5..1e16).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

fn escape_into(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes one family: its HELP line when `help` (and it has one), its TYPE line, its samples.
pub fn render_family(out: &mut String, f: &Family, help: bool) {
    if help && let Some(h) = &f.help {
        out.push_str("# HELP ");
        out.push_str(&f.name);
        out.push(' ');
        escape_into(out, h, false);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(&f.name);
    out.push(' ');
    out.push_str(f.kind.as_str());
    out.push('\n');
    for s in &f.samples {
        out.push_str(&f.name);
        out.push_str(s.suffix.as_str());
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (n, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(n);
                out.push_str("=\"");
                escape_into(out, v, true);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&fmt_value(s.value));
        if let Some(t) = s.timestamp_ms {
            // Writing to a String cannot fail.
            let _ = write!(out, " {t}");
        }
        out.push('\n');
    }
}

/// The whole exposition as text; [`parse`] reads it back as the same value.
pub fn render(e: &Exposition) -> String {
    let mut out = String::new();
    for f in &e.families {
        render_family(&mut out, f, true);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_specifications_example() {
        let text = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP telemetry_requests_metrics_latency_microseconds A summary of the response latency.
# TYPE telemetry_requests_metrics_latency_microseconds summary
telemetry_requests_metrics_latency_microseconds{quantile="0.01"} 3102
telemetry_requests_metrics_latency_microseconds{quantile="0.05"} 3272
telemetry_requests_metrics_latency_microseconds{quantile="0.5"} 4773
telemetry_requests_metrics_latency_microseconds{quantile="0.9"} 9001
telemetry_requests_metrics_latency_microseconds{quantile="0.99"} 76656
telemetry_requests_metrics_latency_microseconds_sum 1.7560473e+07
telemetry_requests_metrics_latency_microseconds_count 2693
"#;
        let e = parse(text).unwrap();
        assert_eq!(e.families.len(), 6);
        let http = &e.families[0];
        assert_eq!(http.kind, Kind::Counter);
        assert_eq!(
            http.help.as_deref(),
            Some("The total number of HTTP requests.")
        );
        assert_eq!(http.samples[1].value, 3.0);
        assert_eq!(http.samples[1].timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(http.samples[1].label("code"), Some("400"));
        let msdos = &e.families[1];
        assert_eq!(msdos.kind, Kind::Untyped);
        assert_eq!(msdos.samples[0].label("path"), Some(r"C:\DIR\FILE.TXT"));
        assert_eq!(
            msdos.samples[0].label("error"),
            Some("Cannot find file:\n\"FILE.TXT\"")
        );
        assert_eq!(msdos.samples[0].value, 1_458_255_915.0);
        let weird = e.family("something_weird").unwrap();
        assert_eq!(weird.samples[0].value, f64::INFINITY);
        assert_eq!(weird.samples[0].timestamp_ms, Some(-3_982_045));
        let h = e.family("http_request_duration_seconds").unwrap();
        assert_eq!(h.kind, Kind::Histogram);
        assert_eq!(h.samples.len(), 8);
        assert_eq!(h.samples[5].suffix, Suffix::Bucket);
        assert_eq!(h.samples[6].suffix, Suffix::Sum);
        assert_eq!(
            h.sample_name(&h.samples[7]),
            "http_request_duration_seconds_count"
        );
        let s = e
            .family("telemetry_requests_metrics_latency_microseconds")
            .unwrap();
        assert_eq!((s.kind, s.samples.len()), (Kind::Summary, 7));
        assert_eq!(s.samples[5].value, 17_560_473.0);
        // Our rendering reads back as the same value.
        assert_eq!(parse(&render(&e)).unwrap(), e);
    }

    #[test]
    fn loose_where_prometheus_is() {
        let e = parse("  a { x = \"1\" , y=\"2\", } \t 5  \n\tb{} -Inf\nc NaN\n").unwrap();
        assert_eq!(e.families[0].samples[0].labels.len(), 2);
        assert_eq!(e.families[1].samples[0].value, f64::NEG_INFINITY);
        assert!(e.families[2].samples[0].value.is_nan());
        assert_eq!(parse("").unwrap().families.len(), 0);
        assert_eq!(parse("\n\n# just a comment\n").unwrap().families.len(), 0);
    }

    #[test]
    fn refusals_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("a 1\nb 2", 2, "does not end with a line feed"),
            ("a 1\r\n", 1, "carriage return"),
            ("a 1\n9b 2\n", 2, "does not start with a metric name"),
            ("a-b 1\n", 1, "is not a metric name"),
            ("a\n", 1, "has no value"),
            ("a x\n", 1, "is not a number"),
            ("a 1e999\n", 1, "beyond a 64-bit float"),
            ("a 0x1p3\n", 1, "is not a number"),
            ("a 1 1.5\n", 1, "not a timestamp"),
            ("a 1 2 3\n", 1, "more after the timestamp"),
            ("a{x=\"1\" 2\n", 1, "expected `,` or `}`"),
            ("a{x=\"1\\t\"} 2\n", 1, "not an escape"),
            ("a{x=\"1} 2\n", 1, "not closed"),
            ("a{x=1} 2\n", 1, "does not start with `\"`"),
            ("a{x=\"1\",x=\"2\"} 2\n", 1, "appears twice"),
            ("a{,} 2\n", 1, "is not a label name"),
            ("a{1x=\"1\"} 2\n", 1, "is not a label name"),
            ("# TYPE a counter\n# TYPE a gauge\n", 2, "a second TYPE"),
            ("# TYPE a countr\n", 1, "is not a metric type"),
            ("# TYPE a counter x\n", 1, "more after the type"),
            ("# TYPE a\n", 1, "names no type"),
            ("# HELP\n", 1, "without a metric name"),
            ("# HELP a x\n# HELP a y\n", 2, "a second HELP"),
            ("# HELP a bad \\t escape\n", 1, "not an escape"),
            ("a 1\n# TYPE a gauge\n", 2, "after its samples"),
            (
                "a 1\nb 1\na{x=\"y\"} 2\n",
                3,
                "comes back after other metrics",
            ),
            ("a{x=\"1\"} 1\na{x=\"1\"} 2\n", 2, "first at line 1"),
            ("# TYPE h histogram\nh 1\n", 2, "is a histogram"),
            ("# TYPE h histogram\nh_bucket 1\n", 2, "no `le` label"),
            (
                "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                2,
                "is not a number",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\n",
                3,
                "increasing order",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
                2,
                "no bucket le=\"+Inf\"",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",
                3,
                "must be equal",
            ),
            (
                "# TYPE s summary\ns{quantile=\"0.9\"} 1\ns{quantile=\"0.5\"} 1\n",
                3,
                "increasing order",
            ),
            ("# TYPE s summary\ns 1\n", 2, "no `quantile` label"),
        ];
        for (text, line, needle) in cases {
            let e = err(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.reason.contains(needle), "{text:?}: {e}");
            assert!(!e.to_string().contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn bounds() {
        let long = format!("a{{x=\"{}\"}} 1\n", "y".repeat(MAX_LINE));
        assert!(err(&long).reason.contains("KiB"));
        let many: String = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\",")).collect();
        let e = err(&format!("ok 1\na{{{many}}} 1\n"));
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("labels on one sample"), "{e}");
        // A control character in an offending token is shown escaped.
        let e = err("a\u{1b}[31m 1\n");
        assert!(!e.reason.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn histogram_groups_by_their_other_labels() {
        let text = "# TYPE h histogram\n\
            h_bucket{t=\"a\",le=\"1\"} 1\nh_bucket{t=\"a\",le=\"+Inf\"} 2\n\
            h_sum{t=\"a\"} 3\nh_count{t=\"a\"} 2\n\
            h_bucket{le=\"0.5\",t=\"b\"} 0\nh_bucket{t=\"b\",le=\"+Inf\"} 0\n\
            h_sum{t=\"b\"} 0\nh_count{t=\"b\"} 0\n";
        let e = parse(text).unwrap();
        assert_eq!(e.families[0].samples.len(), 8);
        assert_eq!(parse(&render(&e)).unwrap(), e);
    }

    #[test]
    fn values_render_back_exactly() {
        for v in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-300,
            5e-324,
            1e300,
            123_456_789.125,
            -2.5e-7,
        ] {
            let back: f64 = fmt_value(v).parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v}");
        }
    }

    #[test]
    fn content_types() {
        assert!(is_content_type("text/plain; version=0.0.4; charset=utf-8"));
        assert!(is_content_type("Text/Plain;version=0.0.4"));
        assert!(!is_content_type("text/plain"));
        assert!(!is_content_type("application/json"));
        assert!(!is_content_type(
            "application/openmetrics-text; version=1.0.0"
        ));
        assert!(looks_like("# HELP x y\n"));
        assert!(looks_like("\n up 1\n"));
        assert!(!looks_like("{\"status\": \"up\"}"));
        assert!(!looks_like("<html>"));
    }
}
