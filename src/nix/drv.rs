//! Store derivations (`.drv` files): the ATerm text Nix writes for each derivation, whose
//! `inputDrvs` are a build step's true dependencies. [`parse`] reads one into a [`Derivation`]
//! that borrows from the file's bytes (a string is copied only when it holds an escape);
//! [`summary`] reads only what the queue runner schedules by (outputs, input derivations,
//! platform, required system features) into an owned [`DrvSummary`]; [`unparse`] writes one back
//! byte for byte as Nix does; [`read_drv`] and [`read_drv_summary`] read one from a store
//! directory, named by a full store path or by its base name.
//!
//! # The format
//!
//! From NixOS/nix `src/libstore/derivation/aterm.cc` at commit 88b09c64fbea (functions `parse`,
//! `parseString`, `parseDerivedPathMapNode`, `parseOutput`, `unparse`, `printString`,
//! `printUnquotedString`; until 2.2x the same code was `parseDerivation` and `unparse` in
//! `src/libstore/derivations.cc`, which Nix 2.8, installed here, still uses) and
//! `doc/manual/source/protocols/derivation-aterm.md`:
//!
//! ```text
//! Derive([outputs],[inputDrvs],[inputSrcs],"platform","builder",[args],[env])
//! DrvWithVersion("xp-dyn-drv",[outputs],[inputDrvs],…)      (dynamic derivations only)
//!   output   = ("name","path","hashAlgo","hash")
//!   inputDrv = ("drvPath",["out",…])
//!            | ("drvPath",(["out",…],[("out",<node>),…]))   (xp-dyn-drv only; <node> is
//!                                                            either form again)
//!   env      = ("name","value")
//! ```
//!
//! A string is `"…"` in which `\` escapes the next byte: `\n`, `\r`, `\t` stand for newline,
//! carriage return and tab, any other `\c` for `c` itself. Nix's writer escapes `"`, `\`,
//! newline, carriage return and tab in the builder, the arguments and the environment, and
//! writes every other string (store paths, output names, hash algorithms, hashes, the platform)
//! unescaped. Every set and map is written sorted bytewise: outputs by name, input derivations
//! by path, each list of output names, input sources, environment names. An output is
//! input-addressed (`path`, `""`, `""`), deferred (all three empty), fixed (`path`,
//! `[r:|git:|text:]algo`, the digest in lowercase hex), floating (`""`, `method:algo`, `""`) or
//! impure (`""`, `method:algo`, `"impure"`).
//!
//! # What is refused
//!
//! Everything Nix's parser refuses, each as one [`Error::Drv`] line naming the byte offset and
//! what was expected there: an unknown head or version, a missing separator, an unterminated
//! string, a store path that is not one (a 32-character hash of Nix's base32, `-`, a name of at
//! most 211 characters from `[A-Za-z0-9+-._?=]`, not `.`/`..`), an input derivation that is not a
//! `.drv` or names no output, an output whose fields fit none of the five kinds, an unknown hash
//! algorithm. Beyond Nix, and only what Nix never writes: trailing bytes after the closing `)`
//! (Nix ignores them), separators that are missing or doubled (Nix's list reader skips a missing
//! comma), sets or maps out of order or repeated (Nix keeps one of the repeated entries, so two
//! readers could disagree on which), escapes inside store paths, names or hashes (Nix writes none
//! there), a fixed output's digest in another base than lowercase hex, store paths of one file in
//! two store directories. We do not check that a fixed output's path matches its hash, which
//! Nix does.
//!
//! Bounds, each with its reason: [`MAX_DRV_SIZE`] for a file; [`MAX_DEPTH`] for the nesting of
//! dynamic-derivation outputs, the only recursion; no separate bound on a string or a list,
//! since every string is a slice of the (capped) file and every list element takes at least
//! three of its bytes. Text that is not UTF-8 (Nix strings are bytes) becomes U+FFFD in
//! the free-text fields (platform, builder, arguments, environment); names, paths and hashes are
//! ASCII by the checks above. Nothing here panics on any input.
//!
//! # Speed
//!
//! One pass over the bytes, `memchr` to find the end of each string; a string is copied only
//! when it holds an escape or is not UTF-8. Issue 16's target is at least 50,000 files per
//! second on one core. Measured 2026-12-02 with
//! `cargo bench --bench drv -- --warm-up-time 1 --measurement-time 5` (release build, one
//! thread, on the project's 2-core Debian machine, load average about 1 from others) over
//! 2,000 generated stdenv-like derivations (5–50 input derivations, 6.2 KiB on average, 2.2 to
//! 10.4 KiB; benches/drv.rs): [`parse`] **108,000 per second**, [`summary`] 103,000 (its
//! strings are owned), [`read_drv_summary`] from files in the page cache 75,000.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::readfile;

/// The largest `.drv` file read. Nix sets none, but a derivation's environment reaches its
/// builder through `execve`, where Linux allows 128 KiB per variable and a few MiB in all, so
/// real derivations are kilobytes and the largest (a whole configuration in the environment, or
/// structured attributes, which go through a file instead) are a few MiB. 16 MiB leaves room
/// for those and keeps a wrong file (or many read at once) from filling memory: every list
/// element takes at least 3 bytes of the file, and 32 bytes raw plus 24 decoded while it is
/// read, so a parse needs at most about 20 times its file (320 MiB at the cap).
pub const MAX_DRV_SIZE: u64 = 16 << 20;

/// Dynamic-derivation outputs (`("drv",(["out"],[("out",…)]))`, "the outputs of the derivation
/// that this derivation's output is") nest at most this deep. Nix sets no bound; the nesting is
/// our only recursion, so the bound keeps the stack small whatever the file says. The feature is
/// experimental and one level is what its tests use; 16 is far beyond any chain of derivations
/// producing derivations.
pub const MAX_DEPTH: usize = 16;

/// The one ATerm version besides the plain `Derive(`: NixOS/nix `aterm.cc`, `parse`.
pub const DYN_DRV_VERSION: &str = "xp-dyn-drv";

/// The longest name of a store path (after `<hash>-`): NixOS/nix
/// `src/libstore/include/nix/store/path.hh`, `StorePath::MaxPathLen`.
const MAX_NAME_LEN: usize = 211;

/// Characters of a store path's hash part: Nix's base32 (no e, o, u, t).
const NIX_BASE32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Byte classes as lookup tables: every store path of a file is checked, character by
/// character, so this is the parser's inner loop beside the string scan.
const fn table(chars: &[u8], alnum: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    if alnum {
        let mut c = 0;
        while c < 256 {
            t[c] = t[c] || (c as u8).is_ascii_alphanumeric();
            c += 1;
        }
    }
    t
}

/// `NIX_BASE32` as a table.
static IS_NIX32: [bool; 256] = table(NIX_BASE32, false);

/// The characters of a store path's name (NixOS/nix `path.cc`, `checkName`).
static IS_NAME: [bool; 256] = table(b"+-._?=", true);

/// The environment variable holding structured attributes as JSON: NixOS/nix
/// `parsed-derivations.hh`, `StructuredAttrs::envVarName`.
pub const STRUCTURED_ATTRS_VAR: &str = "__json";

/// A string of a derivation: borrowed from the file unless it had to be unescaped or repaired.
pub type Str<'a> = Cow<'a, str>;

/// Which head the file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `Derive(…)`: every derivation Nix writes without dynamic inputs.
    Derive,
    /// `DrvWithVersion("xp-dyn-drv",…)`: written only when an input is an output of an output.
    DynamicDerivations,
}

/// One output of a derivation, its four fields as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvOutput<'a> {
    pub name: Str<'a>,
    /// The output's store path; empty when it is not known before building (deferred,
    /// floating, impure).
    pub path: Str<'a>,
    /// Empty, or the content-addressing method and algorithm (`sha256`, `r:sha256`, …).
    pub hash_algo: Str<'a>,
    /// Empty, a fixed output's digest in lowercase hex, or `impure`.
    pub hash: Str<'a>,
}

/// What kind of output a [`DrvOutput`] is, from which of its fields are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Path set, no hash: the path is a hash of the derivation.
    InputAddressed,
    /// Nothing set: input-addressed, but an input is content-addressed, so the path is known
    /// only once the inputs are built.
    Deferred,
    /// Path, algorithm and digest: a fixed-output derivation (a download).
    Fixed,
    /// Only the algorithm: content-addressed, the path known after the build.
    Floating,
    /// Algorithm and `impure`.
    Impure,
}

impl DrvOutput<'_> {
    pub fn kind(&self) -> OutputKind {
        match (self.path.is_empty(), self.hash_algo.is_empty(), &*self.hash) {
            (false, true, _) => OutputKind::InputAddressed,
            (true, true, _) => OutputKind::Deferred,
            (_, false, "impure") => OutputKind::Impure,
            (_, false, "") => OutputKind::Floating,
            (_, false, _) => OutputKind::Fixed,
        }
    }

    fn into_owned(self) -> DrvOutput<'static> {
        DrvOutput {
            name: owned(self.name),
            path: owned(self.path),
            hash_algo: owned(self.hash_algo),
            hash: owned(self.hash),
        }
    }
}

/// The outputs of a derivation that another one needs, and (dynamic derivations only) outputs
/// of derivations those outputs are, keyed by the output that is a derivation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub outputs: Vec<Str<'a>>,
    pub dynamic: Vec<(Str<'a>, Wanted<'a>)>,
}

impl Wanted<'_> {
    fn into_owned(self) -> Wanted<'static> {
        Wanted {
            outputs: self.outputs.into_iter().map(owned).collect(),
            dynamic: self
                .dynamic
                .into_iter()
                .map(|(k, w)| (owned(k), w.into_owned()))
                .collect(),
        }
    }
}

/// One input derivation: its `.drv` path and the outputs of it that are needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDrv<'a> {
    pub path: Str<'a>,
    /// Needed outputs, sorted.
    pub outputs: Vec<Str<'a>>,
    /// Dynamic derivations only: for an output of `path` that is itself a derivation, the
    /// outputs of that one which are needed. Empty in every `Derive(` file.
    pub dynamic: Vec<(Str<'a>, Wanted<'a>)>,
}

impl InputDrv<'_> {
    /// The outputs of `path` that must be built first: the needed ones and those that are
    /// derivations, sorted, each once.
    pub fn outputs_to_build(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.outputs.iter().map(|s| &**s).collect();
        v.extend(self.dynamic.iter().map(|(k, _)| &**k));
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// A parsed `.drv`, every list in file order (which Nix writes sorted, arguments aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation<'a> {
    pub format: Format,
    pub outputs: Vec<DrvOutput<'a>>,
    pub input_drvs: Vec<InputDrv<'a>>,
    pub input_srcs: Vec<Str<'a>>,
    pub platform: Str<'a>,
    pub builder: Str<'a>,
    pub args: Vec<Str<'a>>,
    pub env: Vec<(Str<'a>, Str<'a>)>,
}

impl Derivation<'_> {
    /// A copy that no longer borrows the file.
    pub fn into_owned(self) -> Derivation<'static> {
        Derivation {
            format: self.format,
            outputs: self
                .outputs
                .into_iter()
                .map(DrvOutput::into_owned)
                .collect(),
            input_drvs: self
                .input_drvs
                .into_iter()
                .map(|i| InputDrv {
                    path: owned(i.path),
                    outputs: i.outputs.into_iter().map(owned).collect(),
                    dynamic: i
                        .dynamic
                        .into_iter()
                        .map(|(k, w)| (owned(k), w.into_owned()))
                        .collect(),
                })
                .collect(),
            input_srcs: self.input_srcs.into_iter().map(owned).collect(),
            platform: owned(self.platform),
            builder: owned(self.builder),
            args: self.args.into_iter().map(owned).collect(),
            env: self
                .env
                .into_iter()
                .map(|(k, v)| (owned(k), owned(v)))
                .collect(),
        }
    }

    /// The value of environment variable `name` (the list is sorted, as Nix writes it).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .and_then(|i| self.env.get(i))
            .map(|(_, v)| &**v)
    }

    /// The system features a machine must have to build this derivation, sorted, each once, as
    /// the queue runner computes them (NixOS/hydra `src/hydra-queue-runner/queue-monitor.cc`,
    /// `State::createStep` (a9581bcd), calls Nix's `getRequiredSystemFeatures`): the
    /// `requiredSystemFeatures` attribute (from the structured attributes' JSON when the
    /// derivation has them, else the environment variable split at whitespace), plus
    /// `ca-derivations` when an output's path is not known in advance (NixOS/nix
    /// `derivation-options.cc`, `getRequiredSystemFeatures`).
    pub fn required_system_features(&self) -> Result<Vec<String>> {
        features(
            self.env_var(STRUCTURED_ATTRS_VAR),
            self.env_var("requiredSystemFeatures"),
            self.outputs.iter().any(|o| o.path.is_empty()),
        )
        .map_err(|reason| Error::parse("derivation", reason))
    }
}

fn owned(s: Str<'_>) -> Str<'static> {
    Cow::Owned(s.into_owned())
}

/// What the queue runner schedules a step by, owned: the part of a `.drv` the analysis joins
/// with the steps of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvSummary {
    /// `(name, path)`, sorted by name; the path is empty when not known in advance.
    pub outputs: Vec<(String, String)>,
    /// `(drv path, outputs to build)`, sorted by path; see [`InputDrv::outputs_to_build`].
    pub input_drvs: Vec<(String, Vec<String>)>,
    pub platform: String,
    /// See [`Derivation::required_system_features`].
    pub required_system_features: Vec<String>,
}

/// Parses a `.drv` file's bytes; `what` names it in errors.
pub fn parse<'a>(bytes: &'a [u8], what: &str) -> Result<Derivation<'a>> {
    let raw = Parser::new(bytes, true)
        .derivation()
        .map_err(|e| e.into_error(what))?;
    Ok(Derivation {
        format: raw.format,
        outputs: raw
            .outputs
            .into_iter()
            .map(|o| DrvOutput {
                name: o.name.decode(),
                path: o.path.decode(),
                hash_algo: o.algo.decode(),
                hash: o.hash.decode(),
            })
            .collect(),
        input_drvs: raw
            .input_drvs
            .into_iter()
            .map(|i| InputDrv {
                path: i.path.decode(),
                outputs: decode_all(i.wanted.outputs),
                dynamic: decode_dynamic(i.wanted.dynamic),
            })
            .collect(),
        input_srcs: decode_all(raw.input_srcs),
        platform: raw.platform.decode(),
        builder: raw.builder.decode(),
        args: decode_all(raw.args),
        env: raw
            .env
            .into_iter()
            .map(|(k, v)| (k.decode(), v.decode()))
            .collect(),
    })
}

/// Parses a `.drv` file's bytes as strictly as [`parse`], keeping only its [`DrvSummary`]: the
/// arguments and the environment (but the variables features are read from) are checked and
/// skipped, not decoded.
pub fn summary(bytes: &[u8], what: &str) -> Result<DrvSummary> {
    let raw = Parser::new(bytes, false)
        .derivation()
        .map_err(|e| e.into_error(what))?;
    let var = |name: &str| {
        raw.env
            .iter()
            .find(|(k, _)| k.is(name.as_bytes()))
            .map(|(_, v)| *v)
    };
    let json = var(STRUCTURED_ATTRS_VAR);
    let required_system_features = features(
        json.map(Raw::decode).as_deref(),
        var("requiredSystemFeatures").map(Raw::decode).as_deref(),
        raw.outputs.iter().any(|o| o.path.bytes.is_empty()),
    )
    .map_err(|reason| {
        let at = json.or(var("requiredSystemFeatures")).map_or(0, |v| v.at);
        PErr { at, reason }.into_error(what)
    })?;
    Ok(DrvSummary {
        outputs: raw
            .outputs
            .iter()
            .map(|o| (o.name.decode().into_owned(), o.path.decode().into_owned()))
            .collect(),
        input_drvs: raw
            .input_drvs
            .iter()
            .map(|i| {
                let mut outs: Vec<String> = i
                    .wanted
                    .outputs
                    .iter()
                    .chain(i.wanted.dynamic.iter().map(|(k, _)| k))
                    .map(|o| o.decode().into_owned())
                    .collect();
                if !i.wanted.dynamic.is_empty() {
                    outs.sort_unstable();
                    outs.dedup();
                }
                (i.path.decode().into_owned(), outs)
            })
            .collect(),
        platform: raw.platform.decode().into_owned(),
        required_system_features,
    })
}

/// See [`Derivation::required_system_features`]; `unknown_path` says whether an output's path
/// is not known in advance.
fn features(
    json: Option<&str>,
    env: Option<&str>,
    unknown_path: bool,
) -> std::result::Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Attrs {
        #[serde(rename = "requiredSystemFeatures", default)]
        required_system_features: Option<Vec<String>>,
    }
    let mut v: Vec<String> = match json {
        // With structured attributes the environment variable is not consulted at all
        // (NixOS/nix derivation-options.cc, getStringSetAttr).
        Some(json) => serde_json::from_str::<Attrs>(json)
            .map_err(|e| format!("{STRUCTURED_ATTRS_VAR}: {e}"))?
            .required_system_features
            .unwrap_or_default(),
        // tokenizeString's default separators: space, tab, newline, carriage return.
        None => env
            .unwrap_or_default()
            .split([' ', '\t', '\n', '\r'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    };
    if unknown_path {
        v.push("ca-derivations".to_string());
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Where a derivation named `drv_path` lies in the directory `store_dir`: `drv_path` is a full
/// store path (`/nix/store/<hash>-name.drv`, as Hydra's `drvPath` columns hold it) or its base
/// name (a row converted to the storeDir scheme, and `BuildSteps.resolvedDrvPath`; docs/hydra.md
/// §1); only the base name is used, so a store copied elsewhere is read the same. A name that is
/// not a store path of a `.drv` is refused, so nothing outside `store_dir` is ever named.
pub fn drv_file(store_dir: &Path, drv_path: &str) -> Result<PathBuf> {
    let base = match drv_path.rsplit_once('/') {
        Some((dir, base)) if drv_path.starts_with('/') && !dir.is_empty() => base,
        None => drv_path,
        Some(_) => "",
    };
    check_base_name(base.as_bytes(), true).map_err(|reason| {
        Error::parse(
            format!("derivation path {drv_path:?}"),
            format!("not a store path of a .drv file: {reason}"),
        )
    })?;
    Ok(store_dir.join(base))
}

/// Reads the derivation `drv_path` (a full store path or a base name, see [`drv_file`]) from
/// the directory `store_dir`; `None` when the file does not exist there. A file that is not
/// regular, is larger than [`MAX_DRV_SIZE`] or is malformed is an error.
pub fn read_drv(store_dir: &Path, drv_path: &str) -> Result<Option<Derivation<'static>>> {
    read_with(store_dir, drv_path, |bytes, what| {
        parse(bytes, what).map(Derivation::into_owned)
    })
}

/// [`read_drv`], keeping only the [`DrvSummary`].
pub fn read_drv_summary(store_dir: &Path, drv_path: &str) -> Result<Option<DrvSummary>> {
    read_with(store_dir, drv_path, summary)
}

fn read_with<T>(
    store_dir: &Path,
    drv_path: &str,
    f: impl FnOnce(&[u8], &str) -> Result<T>,
) -> Result<Option<T>> {
    let file = drv_file(store_dir, drv_path)?;
    let bytes = match readfile::read_capped(&file, "derivation", MAX_DRV_SIZE) {
        Ok(b) => b,
        Err(Error::Io { source: cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    f(&bytes, &file.display().to_string()).map(Some)
}

/// Writes `drv` as Nix does (NixOS/nix `aterm.cc`, `unparse`): for a derivation Nix wrote,
/// `unparse(&parse(bytes)?) == bytes`. Every string is escaped as `printString` does; Nix leaves
/// paths, names, hashes and the platform unescaped, which is the same text for every valid one
/// (a platform holding `"`, `\` or a control character would differ; Nix's own text of it would
/// not read back).
pub fn unparse(drv: &Derivation<'_>) -> String {
    let mut s = String::with_capacity(4096);
    let dynamic = drv.input_drvs.iter().any(|i| !i.dynamic.is_empty());
    if dynamic {
        s.push_str("DrvWithVersion(");
        print_string(&mut s, DYN_DRV_VERSION);
        s.push(',');
    } else {
        s.push_str("Derive(");
    }
    print_list(&mut s, &drv.outputs, |s, o| {
        s.push('(');
        for (i, f) in [&o.name, &o.path, &o.hash_algo, &o.hash]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                s.push(',');
            }
            print_string(s, f);
        }
        s.push(')');
    });
    s.push(',');
    print_list(&mut s, &drv.input_drvs, |s, i| {
        s.push('(');
        print_string(s, &i.path);
        s.push(',');
        print_wanted(s, &i.outputs, &i.dynamic);
        s.push(')');
    });
    s.push(',');
    print_list(&mut s, &drv.input_srcs, |s, p| print_string(s, p));
    s.push(',');
    print_string(&mut s, &drv.platform);
    s.push(',');
    print_string(&mut s, &drv.builder);
    s.push(',');
    print_list(&mut s, &drv.args, |s, a| print_string(s, a));
    s.push(',');
    print_list(&mut s, &drv.env, |s, (k, v)| {
        s.push('(');
        print_string(s, k);
        s.push(',');
        print_string(s, v);
        s.push(')');
    });
    s.push(')');
    s
}

fn print_wanted(s: &mut String, outputs: &[Str<'_>], dynamic: &[(Str<'_>, Wanted<'_>)]) {
    if dynamic.is_empty() {
        print_list(s, outputs, |s, o| print_string(s, o));
    } else {
        s.push('(');
        print_list(s, outputs, |s, o| print_string(s, o));
        s.push(',');
        print_list(s, dynamic, |s, (k, w)| {
            s.push('(');
            print_string(s, k);
            s.push(',');
            print_wanted(s, &w.outputs, &w.dynamic);
            s.push(')');
        });
        s.push(')');
    }
}

fn print_list<T>(s: &mut String, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    s.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        f(s, item);
    }
    s.push(']');
}

/// NixOS/nix `aterm.cc`, `printString`.
fn print_string(s: &mut String, v: &str) {
    s.push('"');
    let mut rest = v;
    while let Some(i) = rest.find(['"', '\\', '\n', '\r', '\t']) {
        let (head, tail) = rest.split_at(i);
        s.push_str(head);
        let mut chars = tail.chars();
        let esc = match chars.next() {
            Some('\n') => "\\n",
            Some('\r') => "\\r",
            Some('\t') => "\\t",
            Some('"') => "\\\"",
            _ => "\\\\",
        };
        s.push_str(esc);
        rest = chars.as_str();
    }
    s.push_str(rest);
    s.push('"');
}

// ---------------------------------------------------------------------------------------------
// The parser: one pass over the bytes into raw slices; decoding is left to the caller, so that
// `summary` decodes only what it keeps.

/// A string as it stands in the file: its bytes between the quotes, whether they hold a `\`,
/// and the offset of its opening quote.
#[derive(Debug, Clone, Copy)]
struct Raw<'a> {
    bytes: &'a [u8],
    escaped: bool,
    at: usize,
}

impl<'a> Raw<'a> {
    /// The string's bytes with escapes resolved (`parseString`).
    fn unescaped(self) -> Cow<'a, [u8]> {
        if !self.escaped {
            return Cow::Borrowed(self.bytes);
        }
        let mut out = Vec::with_capacity(self.bytes.len());
        let mut it = self.bytes.iter();
        while let Some(&b) = it.next() {
            if b == b'\\' {
                // The scanner guarantees a byte after every `\`.
                match it.next() {
                    Some(b'n') => out.push(b'\n'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b't') => out.push(b'\t'),
                    Some(&c) => out.push(c),
                    None => {}
                }
            } else {
                out.push(b);
            }
        }
        Cow::Owned(out)
    }

    fn decode(self) -> Str<'a> {
        match self.unescaped() {
            // `from_utf8` first: its check is faster than the lossy one's, and nearly every
            // string is valid.
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(b),
            },
            Cow::Owned(v) => Cow::Owned(
                String::from_utf8(v)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// Whether the unescaped string is `s`.
    fn is(self, s: &[u8]) -> bool {
        if self.escaped {
            *self.unescaped() == *s
        } else {
            self.bytes == s
        }
    }

    /// Bytewise order of the unescaped strings, as Nix's sets and maps sort.
    fn order(self, other: Raw<'_>) -> Ordering {
        if !self.escaped && !other.escaped {
            self.bytes.cmp(other.bytes)
        } else {
            self.unescaped().cmp(&other.unescaped())
        }
    }

    /// The string for an error message: at most 80 characters, control characters escaped.
    fn show(self) -> String {
        let text = String::from_utf8_lossy(self.bytes);
        let mut short: String = text.chars().take(80).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        format!("{short:?}")
    }
}

struct RawOutput<'a> {
    name: Raw<'a>,
    path: Raw<'a>,
    algo: Raw<'a>,
    hash: Raw<'a>,
}

#[derive(Default)]
struct RawWanted<'a> {
    outputs: Vec<Raw<'a>>,
    dynamic: Vec<(Raw<'a>, RawWanted<'a>)>,
}

struct RawInput<'a> {
    path: Raw<'a>,
    wanted: RawWanted<'a>,
}

struct RawDrv<'a> {
    format: Format,
    outputs: Vec<RawOutput<'a>>,
    input_drvs: Vec<RawInput<'a>>,
    input_srcs: Vec<Raw<'a>>,
    platform: Raw<'a>,
    builder: Raw<'a>,
    args: Vec<Raw<'a>>,
    env: Vec<(Raw<'a>, Raw<'a>)>,
}

/// A parse error: the byte offset where the problem starts, and what was expected there.
struct PErr {
    at: usize,
    reason: String,
}

impl PErr {
    fn into_error(self, what: &str) -> Error {
        Error::Drv {
            what: what.to_string(),
            offset: self.at as u64,
            reason: self.reason,
        }
    }
}

type R<T> = std::result::Result<T, PErr>;

fn err<T>(at: usize, reason: impl Into<String>) -> R<T> {
    Err(PErr {
        at,
        reason: reason.into(),
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Keep the arguments and all of the environment (`parse`), or only the variables the
    /// summary reads (`summary`).
    full: bool,
    format: Format,
    /// The directory of the first store path met: every other one must share it.
    store_dir: Option<&'a [u8]>,
}

impl<'a> Parser<'a> {
    fn new(s: &'a [u8], full: bool) -> Self {
        Parser {
            s,
            i: 0,
            full,
            format: Format::Derive,
            store_dir: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, context: &str) -> R<()> {
        self.expect_with(c, || context.to_string())
    }

    /// [`Parser::expect`] with a context made only when it is needed: these run once per
    /// element of every list.
    fn expect_with(&mut self, c: u8, context: impl FnOnce() -> String) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            let context = context();
            let found = match self.peek() {
                Some(b) => format!("{:?}", char::from(b)),
                None => "the end of the file".to_string(),
            };
            err(
                self.i,
                format!("expected '{}' {context}, found {found}", char::from(c)),
            )
        }
    }

    /// A quoted string (NixOS/nix `aterm.cc`, `parseString`): up to the first `"` not escaped.
    fn string(&mut self, context: &str) -> R<Raw<'a>> {
        let at = self.i;
        self.expect(b'"', context)?;
        let body = self.i;
        let mut j = body;
        let mut escaped = false;
        loop {
            let rest = self.s.get(j..).unwrap_or_default();
            let Some(k) = memchr::memchr2(b'"', b'\\', rest) else {
                return err(at, format!("unterminated string ({context})"));
            };
            let p = j + k;
            if rest.get(k) == Some(&b'"') {
                self.i = p + 1;
                return Ok(Raw {
                    bytes: self.s.get(body..p).unwrap_or_default(),
                    escaped,
                    at,
                });
            }
            // A backslash: the byte after it is taken as is, whatever it is.
            if p + 1 >= self.s.len() {
                return err(at, format!("unterminated string ({context})"));
            }
            escaped = true;
            j = p + 2;
        }
    }

    /// `[item,item,…]`, each item read by `item`.
    fn list(&mut self, context: &str, mut item: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.expect_with(b'[', || format!("to open {context}"))?;
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.eat(b']') {
                return Ok(());
            }
            self.expect_with(b',', || format!("or ']' after an element of {context}"))?;
        }
    }

    /// A sorted list of strings, each checked by `check`.
    fn string_set(
        &mut self,
        context: &str,
        check: impl Fn(&mut Self, Raw<'a>) -> R<()>,
    ) -> R<Vec<Raw<'a>>> {
        let mut v: Vec<Raw<'a>> = Vec::new();
        self.list(context, |p| {
            let s = p.string(context)?;
            check(p, s)?;
            if let Some(prev) = v.last() {
                in_order(*prev, s, context)?;
            }
            v.push(s);
            Ok(())
        })?;
        Ok(v)
    }

    fn derivation(mut self) -> R<RawDrv<'a>> {
        if self.s.starts_with(b"Derive(") {
            self.i = 7;
        } else if self.s.starts_with(b"DrvWithVersion(") {
            self.i = 15;
            let v = self.string("for the ATerm version")?;
            if v.escaped || v.bytes != DYN_DRV_VERSION.as_bytes() {
                return err(
                    v.at,
                    format!(
                        "unknown ATerm version {}, expected {DYN_DRV_VERSION:?}",
                        v.show()
                    ),
                );
            }
            self.format = Format::DynamicDerivations;
            self.expect(b',', "after the ATerm version")?;
        } else {
            return err(0, "expected 'Derive(' or 'DrvWithVersion(' at the start");
        }

        let mut outputs: Vec<RawOutput<'a>> = Vec::new();
        self.list("the outputs", |p| {
            let o = p.output()?;
            if let Some(prev) = outputs.last() {
                in_order(prev.name, o.name, "the outputs")?;
            }
            outputs.push(o);
            Ok(())
        })?;
        self.expect(b',', "after the outputs")?;

        let mut input_drvs: Vec<RawInput<'a>> = Vec::new();
        self.list("the input derivations", |p| {
            p.expect(b'(', "to open an input derivation")?;
            let path = p.string("for an input derivation's path")?;
            p.store_path(path, true)?;
            if let Some(prev) = input_drvs.last() {
                in_order(prev.path, path, "the input derivations")?;
            }
            p.expect(b',', "after an input derivation's path")?;
            let at = p.i;
            let wanted = p.wanted(0)?;
            if wanted.outputs.is_empty() && wanted.dynamic.is_empty() {
                return err(at, "an input derivation names no output");
            }
            p.expect(b')', "to close an input derivation")?;
            input_drvs.push(RawInput { path, wanted });
            Ok(())
        })?;
        self.expect(b',', "after the input derivations")?;

        let input_srcs = self.string_set("the input sources", |p, s| p.store_path(s, false))?;
        self.expect(b',', "after the input sources")?;
        let platform = self.string("for the platform")?;
        self.expect(b',', "after the platform")?;
        let builder = self.string("for the builder")?;
        self.expect(b',', "after the builder")?;

        let mut args = Vec::new();
        let full = self.full;
        self.list("the arguments", |p| {
            let a = p.string("for an argument")?;
            if full {
                args.push(a);
            }
            Ok(())
        })?;
        self.expect(b',', "after the arguments")?;

        let mut env: Vec<(Raw<'a>, Raw<'a>)> = Vec::new();
        let mut last: Option<Raw<'a>> = None;
        self.list("the environment", |p| {
            p.expect(b'(', "to open an environment variable")?;
            let k = p.string("for a variable's name")?;
            if let Some(prev) = last {
                in_order(prev, k, "the environment")?;
            }
            last = Some(k);
            p.expect(b',', "after a variable's name")?;
            let v = p.string("for a variable's value")?;
            p.expect(b')', "to close an environment variable")?;
            if full || k.is(STRUCTURED_ATTRS_VAR.as_bytes()) || k.is(b"requiredSystemFeatures") {
                env.push((k, v));
            }
            Ok(())
        })?;
        self.expect(b')', "to close the derivation")?;
        if self.i != self.s.len() {
            return err(self.i, "expected the end of the file after the closing ')'");
        }
        Ok(RawDrv {
            format: self.format,
            outputs,
            input_drvs,
            input_srcs,
            platform,
            builder,
            args,
            env,
        })
    }

    /// `("name","path","hashAlgo","hash")`, checked to be one of the five kinds
    /// (NixOS/nix `aterm.cc`, `parseOutput`).
    fn output(&mut self) -> R<RawOutput<'a>> {
        self.expect(b'(', "to open an output")?;
        let name = self.string("for an output's name")?;
        check_output_name(name)?;
        self.expect(b',', "after an output's name")?;
        let path = self.string("for an output's path")?;
        self.expect(b',', "after an output's path")?;
        let algo = self.string("for an output's hash algorithm")?;
        self.expect(b',', "after an output's hash algorithm")?;
        let hash = self.string("for an output's hash")?;
        self.expect(b')', "to close an output")?;
        if algo.bytes.is_empty() {
            if !hash.bytes.is_empty() {
                return err(hash.at, "an output with a hash must name its algorithm");
            }
            if !path.bytes.is_empty() {
                self.store_path(path, false)?;
            }
        } else {
            let digest = hash_algo_size(algo)?;
            if hash.bytes == b"impure" || hash.bytes.is_empty() {
                if !path.bytes.is_empty() {
                    return err(
                        path.at,
                        "a floating or impure output must not name its path in advance",
                    );
                }
            } else {
                self.store_path(path, false)?;
                let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
                if hash.bytes.len() != 2 * digest || !hash.bytes.iter().all(hex) {
                    return err(
                        hash.at,
                        format!(
                            "expected a digest of {} lowercase hex digits, found {}",
                            2 * digest,
                            hash.show()
                        ),
                    );
                }
            }
        }
        Ok(RawOutput {
            name,
            path,
            algo,
            hash,
        })
    }

    /// The outputs wanted of an input derivation: `["out",…]`, or in the dynamic format also
    /// `(["out",…],[("out",<node>),…])` (NixOS/nix `aterm.cc`, `parseDerivedPathMapNode`).
    fn wanted(&mut self, depth: usize) -> R<RawWanted<'a>> {
        let names = |p: &mut Self| {
            p.string_set("an input derivation's outputs", |_, s| check_output_name(s))
        };
        match (self.peek(), self.format) {
            (Some(b'('), Format::DynamicDerivations) => {
                if depth + 1 >= MAX_DEPTH {
                    return err(
                        self.i,
                        format!("dynamic-derivation outputs nested deeper than {MAX_DEPTH}"),
                    );
                }
                self.i += 1;
                let outputs = names(self)?;
                self.expect(b',', "after an input derivation's outputs")?;
                let mut dynamic: Vec<(Raw<'a>, RawWanted<'a>)> = Vec::new();
                self.list("the dynamic outputs", |p| {
                    p.expect(b'(', "to open a dynamic output")?;
                    let name = p.string("for a dynamic output's name")?;
                    check_output_name(name)?;
                    if let Some((prev, _)) = dynamic.last() {
                        in_order(*prev, name, "the dynamic outputs")?;
                    }
                    p.expect(b',', "after a dynamic output's name")?;
                    let w = p.wanted(depth + 1)?;
                    p.expect(b')', "to close a dynamic output")?;
                    dynamic.push((name, w));
                    Ok(())
                })?;
                self.expect(b')', "to close an input derivation's outputs")?;
                Ok(RawWanted { outputs, dynamic })
            }
            (Some(b'['), _) => Ok(RawWanted {
                outputs: names(self)?,
                dynamic: Vec::new(),
            }),
            (_, Format::Derive) => {
                err(self.i, "expected '[' to open an input derivation's outputs")
            }
            (_, Format::DynamicDerivations) => err(
                self.i,
                "expected '[' or '(' to open an input derivation's outputs",
            ),
        }
    }

    /// Checks `s` is a store path (a `.drv` if `drv`) in the same directory as the others.
    fn store_path(&mut self, s: Raw<'a>, drv: bool) -> R<()> {
        let b = s.bytes;
        let bad = |why: &str| err(s.at, format!("{} is not a store path: {why}", s.show()));
        let Some(slash) = memchr::memrchr(b'/', b) else {
            return bad("not absolute");
        };
        if slash == 0 || b.first() != Some(&b'/') {
            return bad("not absolute, or directly under /");
        }
        let (dir, base) = (&b[..slash], &b[slash + 1..]);
        match self.store_dir {
            None => self.store_dir = Some(dir),
            Some(d) if d == dir => {}
            Some(d) => {
                return bad(&format!(
                    "not in {:?}, the store of the paths before it",
                    String::from_utf8_lossy(d)
                ));
            }
        }
        check_base_name(base, drv).or_else(|why| bad(&why))
    }
}

/// Checks that `next` sorts strictly after `prev` (Nix writes sets and maps sorted).
fn in_order(prev: Raw<'_>, next: Raw<'_>, context: &str) -> R<()> {
    match prev.order(next) {
        Ordering::Less => Ok(()),
        Ordering::Equal => err(next.at, format!("{} repeated in {context}", next.show())),
        Ordering::Greater => err(
            next.at,
            format!(
                "{} out of order in {context}: Nix writes them sorted, it comes after {}",
                next.show(),
                prev.show()
            ),
        ),
    }
}

/// A store path's base name: `<32 characters of Nix's base32>-<name>`, the name as
/// [`check_name`] wants it, ending in `.drv` if `drv` (NixOS/nix `src/libstore/path.cc`,
/// `StorePath::StorePath` and `checkName`).
pub(crate) fn check_base_name(base: &[u8], drv: bool) -> std::result::Result<(), String> {
    if base.len() < 34 || base.get(32) != Some(&b'-') {
        return Err("expected a 32-character hash, '-' and a name".to_string());
    }
    if !base[..32].iter().all(|&c| IS_NIX32[usize::from(c)]) {
        return Err("its hash part is not Nix's base32".to_string());
    }
    let name = &base[33..];
    check_name(name)?;
    if drv && !name.ends_with(b".drv") {
        return Err("expected a name ending in .drv".to_string());
    }
    Ok(())
}

/// A store path's name (NixOS/nix `path.cc`, `checkName`).
fn check_name(name: &[u8]) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("a name has 1 to {MAX_NAME_LEN} characters"));
    }
    if !name.iter().all(|&c| IS_NAME[usize::from(c)]) {
        return Err("a name has only the characters A-Z a-z 0-9 + - . _ ? =".to_string());
    }
    for dots in [&b"."[..], b".."] {
        if name == dots || (name.starts_with(dots) && name.get(dots.len()) == Some(&b'-')) {
            return Err("a name does not start with '.' or '..' alone".to_string());
        }
    }
    Ok(())
}

/// An output's name: as a store path's name, since it ends the names of output paths.
fn check_output_name(s: Raw<'_>) -> R<()> {
    check_name(s.bytes)
        .or_else(|why| err(s.at, format!("{} is not an output name: {why}", s.show())))
}

/// The digest size in bytes of `[r:|git:|text:]algo` (NixOS/nix `content-address.cc`,
/// `ContentAddressMethod::parsePrefix`; `hash.cc`, `parseHashAlgo`).
fn hash_algo_size(algo: Raw<'_>) -> R<usize> {
    let b = algo.bytes;
    let bare = [&b"r:"[..], b"git:", b"text:"]
        .iter()
        .find_map(|p| b.strip_prefix(*p))
        .unwrap_or(b);
    match bare {
        b"md5" => Ok(16),
        b"sha1" => Ok(20),
        b"sha256" | b"blake3" => Ok(32),
        b"sha512" => Ok(64),
        _ => err(
            algo.at,
            format!(
                "unknown hash algorithm {}, expected [r:|git:|text:]md5, sha1, sha256, sha512 or blake3",
                algo.show()
            ),
        ),
    }
}

fn decode_all(v: Vec<Raw<'_>>) -> Vec<Str<'_>> {
    v.into_iter().map(Raw::decode).collect()
}

fn decode_dynamic<'a>(v: Vec<(Raw<'a>, RawWanted<'a>)>) -> Vec<(Str<'a>, Wanted<'a>)> {
    v.into_iter()
        .map(|(k, w)| {
            (
                k.decode(),
                Wanted {
                    outputs: decode_all(w.outputs),
                    dynamic: decode_dynamic(w.dynamic),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-a.drv";
    const B: &str = "/nix/store/1a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-b.drv";
    const OUT: &str = "/nix/store/2a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-c";

    fn text(inputs: &str, env: &str) -> String {
        format!(
            r#"Derive([("out","{OUT}","","")],[{inputs}],[],"x86_64-linux","/bin/sh",["-c","x"],[{env}])"#
        )
    }

    fn error(s: &str) -> (u64, String) {
        match parse(s.as_bytes(), "t.drv") {
            Err(Error::Drv { offset, reason, .. }) => (offset, reason),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn a_plain_derivation_borrows_its_strings() {
        let t = text(
            &format!(r#"("{A}",["dev","out"]),("{B}",["out"])"#),
            r#"("a\"b","x\ny"),("name","c")"#,
        );
        let d = parse(t.as_bytes(), "t").unwrap();
        assert_eq!(d.format, Format::Derive);
        assert_eq!(d.outputs[0].kind(), OutputKind::InputAddressed);
        assert_eq!(d.input_drvs.len(), 2);
        assert_eq!(d.input_drvs[0].outputs, ["dev", "out"]);
        assert!(matches!(d.input_drvs[0].path, Cow::Borrowed(_)));
        assert_eq!(d.env[0].0, "a\"b");
        assert_eq!(d.env_var("a\"b"), Some("x\ny"));
        assert_eq!(d.env_var("name"), Some("c"));
        assert_eq!(unparse(&d), t);
        let s = summary(t.as_bytes(), "t").unwrap();
        assert_eq!(s.input_drvs[1], (B.to_string(), vec!["out".to_string()]));
        assert!(s.required_system_features.is_empty());
    }

    #[test]
    fn errors_name_the_offset_and_what_was_expected() {
        let t = text("", "");
        let (o, r) = error(&t[..t.len() - 1]);
        assert_eq!(o as usize, t.len() - 1);
        assert!(r.contains("expected ')' to close the derivation"), "{r}");
        let (o, r) = error(&format!("{t}\n"));
        assert_eq!(o as usize, t.len());
        assert!(r.contains("end of the file"), "{r}");
        let (o, r) = error("Derivx");
        assert_eq!(o, 0);
        assert!(r.contains("Derive("), "{r}");
        let (_, r) = error(&text(&format!(r#"("{B}",["out"]),("{A}",["out"])"#), ""));
        assert!(r.contains("out of order"), "{r}");
        let (_, r) = error(&text(&format!(r#"("{A}",[])"#), ""));
        assert!(r.contains("names no output"), "{r}");
        let (_, r) = error(&text("", r#"("a","1"),("a","2")"#));
        assert!(r.contains("repeated"), "{r}");
        let t = text(&format!(r#"("{A}",(["out"],[]))"#), "");
        let at = t.find("([\"out").unwrap();
        assert_eq!(
            error(&t).0 as usize,
            at,
            "the nested form needs DrvWithVersion"
        );
        let (o, r) = error(r#"Derive([("out","/nix/store/x-c","","")"#);
        assert_eq!(o, 15);
        assert!(r.contains("not a store path"), "{r}");
    }

    #[test]
    fn dynamic_inputs_nest_up_to_the_bound() {
        let nested = |levels: usize| {
            let mut node = r#"["out"]"#.to_string();
            for _ in 0..levels {
                node = format!(r#"(["out"],[("out",{node})])"#);
            }
            text(&format!(r#"("{A}",{node})"#), "").replacen(
                "Derive(",
                r#"DrvWithVersion("xp-dyn-drv","#,
                1,
            )
        };
        let t = nested(MAX_DEPTH - 1);
        let d = parse(t.as_bytes(), "t").unwrap();
        assert_eq!(d.format, Format::DynamicDerivations);
        assert_eq!(d.input_drvs[0].outputs_to_build(), ["out"]);
        assert_eq!(unparse(&d), t);
        let (_, r) = error(&nested(MAX_DEPTH));
        assert!(r.contains("nested deeper"), "{r}");
        let (_, r) = error(&nested(1).replacen("xp-dyn-drv", "xp-dyn-drv2", 1));
        assert!(r.contains("unknown ATerm version"), "{r}");
    }

    #[test]
    fn outputs_of_every_kind() {
        let h = "0".repeat(64);
        for (fields, kind) in [
            (
                format!(r#""{OUT}","r:sha256","{h}""#),
                Some(OutputKind::Fixed),
            ),
            (r#""","","""#.to_string(), Some(OutputKind::Deferred)),
            (
                r#""","r:sha256","""#.to_string(),
                Some(OutputKind::Floating),
            ),
            (
                r#""","sha256","impure""#.to_string(),
                Some(OutputKind::Impure),
            ),
            (format!(r#""{OUT}","sha256","{}""#, &h[..62]), None),
            (format!(r#""{OUT}","sha257","{h}""#), None),
            (format!(r#""{OUT}","","{h}""#), None),
            (format!(r#""{OUT}","sha256","""#), None),
        ] {
            let t = format!(r#"Derive([("out",{fields})],[],[],"s","b",[],[])"#);
            match (parse(t.as_bytes(), "t"), kind) {
                (Ok(d), Some(k)) => assert_eq!(d.outputs[0].kind(), k, "{t}"),
                (Err(_), None) => {}
                (r, k) => panic!("{t}: {r:?}, wanted {k:?}"),
            }
        }
    }

    #[test]
    fn features_from_the_environment_or_structured_attributes() {
        let f = |json, env, unknown| features(json, env, unknown).unwrap();
        assert_eq!(
            f(None, Some(" kvm\tbig-parallel kvm\n"), false),
            ["big-parallel", "kvm"]
        );
        assert_eq!(
            f(
                Some(r#"{"requiredSystemFeatures":["nixos-test"]}"#),
                Some("kvm"),
                true
            ),
            ["ca-derivations", "nixos-test"]
        );
        assert!(f(Some("{}"), None, false).is_empty());
        assert!(features(Some(r#"{"requiredSystemFeatures":"kvm"}"#), None, false).is_err());
    }

    #[test]
    fn drv_files_are_found_by_path_or_base_name_and_nothing_else() {
        let dir = Path::new("/srv/drvs");
        let base = &A["/nix/store/".len()..];
        assert_eq!(drv_file(dir, A).unwrap(), dir.join(base));
        assert_eq!(drv_file(dir, base).unwrap(), dir.join(base));
        for bad in [
            "../../etc/passwd",
            "x/0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-a.drv",
            "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-a",
            "/0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-a.drv",
            "",
        ] {
            assert!(drv_file(dir, bad).is_err(), "{bad}");
        }
    }
}
