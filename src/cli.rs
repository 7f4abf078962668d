//! The command line: the only module that knows clap, and the only place that sets up logging
//! and decides where output goes. It parses arguments into the options of `app`, calls one
//! command, prints its outcome on stdout (notes on stderr), and maps failures to exit codes
//! (0 ok, 1 failure, 2 usage, 128 + the signal's number after a stop asked for by a signal).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use hydra_bottleneck::analysis::table::Finding;
use hydra_bottleneck::app::{self, Context, Format, Printer, Render};
use hydra_bottleneck::dataset::Runner;
use hydra_bottleneck::progress::Progress;
use hydra_bottleneck::sample::{Preset, SampleSpec};
use hydra_bottleneck::source::SourceSpec;
use hydra_bottleneck::window::{TimeSpec, WindowSpec};

#[derive(Parser, Debug)]
#[command(
    name = "hydra-bottleneck",
    version,
    about = "Where a Hydra build farm loses builder capacity, and what each fix would save",
    long_about = "Reads a Hydra CI's build history read-only (from PostgreSQL, an offline \
                  snapshot, or the built-in sample), and measures where builder capacity is lost.\n\n\
                  Without --db or --snapshot every command runs on the built-in sample workload \
                  and says so."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: Common,
}

/// Options every command takes.
#[derive(Args, Debug)]
struct Common {
    /// Read this Hydra database: a libpq URL (postgresql://reader@host/hydra) or key=value string
    /// (host=db dbname=hydra); the PG* variables and ~/.pgpass fill in the rest, as for psql.
    /// `--db ''` takes everything from the environment. `analyze` and `report` copy the window
    /// once into a temporary snapshot under TMPDIR (else /var/tmp), removed when done.
    #[arg(
        long,
        global = true,
        value_name = "CONNINFO",
        conflicts_with = "snapshot"
    )]
    db: Option<String>,
    /// Read this snapshot directory (written by `snapshot` or `sample --out`). With --since or
    /// --until, `analyze` and `report` cut the window once into a temporary snapshot under
    /// TMPDIR (else /var/tmp), removed when done.
    #[arg(long, global = true, value_name = "DIR")]
    snapshot: Option<PathBuf>,
    /// Which built-in sample to read (with neither --db nor --snapshot) or to write (`sample`):
    /// nixos-week (a week in 2025 under the C++ queue runner) or nixos-2026 (a week in 2026 under
    /// the Rust queue runner, on hydra.nixos.org's fleet with its settings).
    #[arg(long, global = true, value_name = "PRESET", default_value_t = Preset::NixosWeek, conflicts_with_all = ["db", "snapshot"])]
    preset: Preset,
    /// Start of the window: a date (2026-11-01), date and time, unix timestamp, or a duration
    /// back from now, or from the end of a snapshot (30d, 12h, 1w).
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time)]
    since: Option<TimeSpec>,
    /// End of the window (exclusive), in the same forms as --since.
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time)]
    until: Option<TimeSpec>,
    /// Which queue runner wrote the steps (their times mean different things): cpp, rust, or
    /// rust@TIME for a history that moved to the Rust runner at TIME (an absolute time; earlier
    /// steps are the C++ runner's). Detected from the steps' machine names, else the schema,
    /// when not given.
    #[arg(long, global = true, value_name = "RUNNER", value_parser = parse_runner)]
    runner: Option<(Runner, Option<i64>)>,
    /// How data is printed on stdout.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
    /// No progress or notes on stderr; errors still go there.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Upper bound on every database statement, in seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = app::DEFAULT_STATEMENT_TIMEOUT.as_secs())]
    statement_timeout: u64,
}

fn parse_time(s: &str) -> Result<TimeSpec, String> {
    hydra_bottleneck::window::parse_time(s)
}

/// `cpp`, `rust` or `rust@TIME` (the switch from the C++ runner, an absolute time).
fn parse_runner(s: &str) -> Result<(Runner, Option<i64>), String> {
    match (s, s.split_once('@')) {
        ("cpp", _) => Ok((Runner::Cpp, None)),
        ("rust", _) => Ok((Runner::Rust, None)),
        (_, Some(("rust", at))) => match parse_time(at)? {
            TimeSpec::At(t) => Ok((Runner::Rust, Some(t))),
            TimeSpec::Ago(_) => Err(format!(
                "`{at}`: the switch to the Rust runner must be an absolute time \
                 (2025-12-22 or 2025-12-22T14:00:00Z)"
            )),
        },
        _ => Err(format!("`{s}` is not cpp, rust or rust@TIME")),
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FormatArg {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the cost-reduction report: where capacity is lost and what each fix would save.
    Report(ReportArgs),
    /// Save the history in the window as an offline snapshot (Parquet per table, manifest.json).
    Snapshot(SnapshotArgs),
    /// Run a named read-only query, or ad-hoc SQL, against the database, a snapshot or the
    /// built-in sample.
    Query(QueryArgs),
    /// Replay the history through a model of the queue runner and answer what-if questions.
    Simulate(SimulateArgs),
    /// Measure xz and zstd on NARs and project the cost onto the farm's output.
    Compress(CompressArgs),
    /// Read the queue runner's status JSON or /metrics, once or as a time series.
    Status(StatusArgs),
    /// Write the built-in sample workload as a snapshot, or load it into an empty database.
    Sample(SampleArgs),
    /// Findings on their own: the capacity ledger, queue waits, utilization, waste, data
    /// quality, the dependency estimate and the overhead fit.
    Analyze(AnalyzeArgs),
}

#[derive(Args, Debug)]
struct QueryArgs {
    #[command(subcommand)]
    action: QueryAction,
    /// Also write the result as a Parquet file; it must not exist, unless --force.
    #[arg(long, global = true, value_name = "FILE")]
    parquet: Option<PathBuf>,
    /// Replace an existing --parquet file.
    #[arg(long, global = true, requires = "parquet")]
    force: bool,
}

#[derive(Subcommand, Debug)]
enum QueryAction {
    /// List the named queries, their parameters and defaults.
    List,
    /// Run a named query; parameters are bound, never spliced into the SQL.
    Run {
        /// The query's name (see `query list`).
        name: String,
        /// A parameter as NAME=VALUE (repeatable); the others take their defaults.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Run one query (SELECT, VALUES, TABLE, WITH of queries, or EXPLAIN of one), checked by
    /// PostgreSQL's own parser before it is sent, in a READ ONLY transaction rolled back
    /// afterwards. COPY, DO, SET, locking clauses and functions that act outside the
    /// transaction (server files and programs, signals, advisory locks, dblink, …) are refused.
    /// On a snapshot or the sample, one query over Hydra's tables (buildsteps, builds,
    /// buildstepoutputs, jobsets, jobsetevals) in polars' SQL; table functions that read files
    /// are refused.
    Sql {
        /// The statement.
        sql: String,
        /// Run even when the role is a superuser or may act outside transactions (server
        /// files, programs, signals); a role that can only read is the safe choice.
        #[arg(long)]
        allow_privileged_role: bool,
        /// The most rows the result may have; a larger result is refused, not held.
        #[arg(long, value_name = "N", default_value_t = hydra_bottleneck::query::DEFAULT_MAX_ROWS)]
        max_rows: usize,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

#[derive(Args, Debug)]
struct AnalyzeArgs {
    /// Which findings to print: one, or several computed in one pass over the data (printed one
    /// after the other, or as one JSON object keyed by finding); `all` alone and only with
    /// --format json.
    #[arg(value_enum, default_values_t = [FindingArg::Ledger])]
    findings: Vec<FindingArg>,
    /// The machines file (/etc/nix/machines format) for configured slot counts; without it
    /// slots are inferred from the peak concurrency observed, and said so.
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// The dependency estimator's gap in seconds (see the README).
    #[arg(long, value_name = "SECONDS")]
    gap: Option<i64>,
    /// Results of `compress --format json`, to set measured codec speeds beside the overhead fit.
    #[arg(long, value_name = "FILE")]
    compression: Option<PathBuf>,
    #[command(flatten)]
    drv: DrvStoreArg,
    #[command(flatten)]
    series: SeriesArg,
}

/// `--drv-store`, shared by the commands that read a dataset's derivation graph.
#[derive(Args, Debug)]
struct DrvStoreArg {
    /// A directory of the steps' .drv files (a Nix store, or a copy of one), for the
    /// derivation graph that tells when each step became runnable; default: /nix/store when
    /// it holds them, else the same-build estimate (said so).
    #[arg(long, value_name = "DIR")]
    drv_store: Option<PathBuf>,
}

/// Where the queue runner's series comes from, shared by the commands whose ledger reads it
/// (held slots, the dispatcher's loss); it replaces the series the data came with.
#[derive(Args, Debug)]
struct SeriesArg {
    /// Read the queue runner's series over the window from this Prometheus server
    /// (http://prometheus:9090): the Rust runner's hydraqueuerunner_* or hydra_exporter's
    /// hydra_queue_runner_* families. Credentials: --prometheus-token-file, else a bearer token
    /// in HYDRA_BOTTLENECK_PROMETHEUS_TOKEN, else user:password in the URL, else
    /// HYDRA_BOTTLENECK_PROMETHEUS_USER and _PASSWORD.
    #[arg(long, value_name = "URL", conflicts_with = "runner_series")]
    prometheus: Option<String>,
    /// With --prometheus: the grid's step, seconds [default: 30].
    #[arg(long, value_name = "SECONDS", requires = "prometheus",
          value_parser = clap::value_parser!(i64).range(1..))]
    prometheus_step: Option<i64>,
    /// With --prometheus: a file holding a bearer token (one line).
    #[arg(long, value_name = "FILE", requires = "prometheus")]
    prometheus_token_file: Option<PathBuf>,
    /// Read the queue runner's series from this file written by `status --watch`.
    #[arg(long, value_name = "FILE.jsonl")]
    runner_series: Option<PathBuf>,
}

impl SeriesArg {
    fn source(self) -> Option<app::SeriesSource> {
        match (self.prometheus, self.runner_series) {
            (Some(url), _) => Some(app::SeriesSource::Prometheus {
                url,
                step_s: self.prometheus_step,
                token_file: self.prometheus_token_file,
            }),
            (None, Some(path)) => Some(app::SeriesSource::WatchFile(path)),
            (None, None) => None,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FindingArg {
    All,
    Ledger,
    Waiting,
    Utilization,
    Waste,
    Quality,
    Deps,
    Overhead,
}

#[derive(Args, Debug)]
struct CompressArgs {
    /// A NAR to measure (repeatable): a directory or store path (packed as `nix-store --dump`
    /// would), FILE.nar, FILE.nar.xz, FILE.nar.zst, FILE.nar.bz2, or a binary cache as a
    /// directory, file:// URL or http(s):// URL (with --paths). Without any, a small default
    /// corpus of local files (said on stderr).
    #[arg(long, short, value_name = "PATH|URL")]
    input: Vec<String>,
    /// The store paths to take from the binary caches of --input, one store path or hash a line
    /// (`#` comments; `-` for stdin). Needed for an http(s):// cache, which cannot be listed.
    #[arg(long, value_name = "FILE", requires = "input")]
    paths: Option<PathBuf>,
    /// Codecs, comma-separated: xz-N (0-9), xz-Ne (extreme), -tN for threads; zstd-N (1-22),
    /// -long (long-distance matching), -tN (worker threads), -nix (Nix 2.35's 16 MiB frames,
    /// 4 threads). Or `default` (xz-1,xz-6,zstd-1,zstd-3,zstd-9,zstd-19,zstd-19-nix) or `full`.
    #[arg(long, value_name = "LIST", default_value = "default")]
    codecs: String,
    /// From each binary cache, measure only this many NARs, spread evenly over their NarSize.
    #[arg(long, value_name = "N")]
    sample: Option<usize>,
    /// Also print a row per NAR and codec (JSON always has them).
    #[arg(long)]
    per_nar: bool,
    /// Cap of the default corpus, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = app::compress::DEFAULT_CORPUS_MIB)]
    corpus_mib: u64,
    /// Measure N output paths of the dataset's builds (--db, --snapshot or the sample), chosen
    /// across the range of their sizes, found in the local Nix store or a --cache.
    #[arg(long, value_name = "N")]
    from_outputs: Option<usize>,
    /// With --from-outputs: a binary cache to find outputs in (repeatable, tried in order): a
    /// directory, file:// or http(s):// URL.
    #[arg(long, value_name = "DIR|URL", requires = "from_outputs")]
    cache: Vec<String>,
    /// Where NAR files from http(s):// caches are kept, and resumed from when a download was
    /// cut short [default: $XDG_CACHE_HOME/hydra-bottleneck/nar or
    /// ~/.cache/hydra-bottleneck/nar].
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,
    /// Skip (with a note) NARs of http(s):// caches whose NarSize or FileSize is larger: they
    /// take long to download, and minutes per codec to measure. A compressed NAR file (local or
    /// from any cache) that decompresses to more is refused: a small file can expand to GiB.
    #[arg(long, value_name = "MIB", default_value_t = hydra_bottleneck::compress::httpcache::DEFAULT_MAX_NAR_MIB)]
    max_nar_mib: u64,
    /// NARs up to this size are held in memory while their codecs are measured; larger ones wait
    /// in a file (--spill-dir) and every codec streams them. 0 streams every NAR: single-frame
    /// zstd levels then compress as they do when streaming, as Nix's compression sink does.
    #[arg(long, value_name = "MIB", default_value_t = hydra_bottleneck::compress::spool::IN_MEMORY_MAX >> 20)]
    in_memory_mib: u64,
    /// Where a NAR larger than --in-memory-mib waits while its codecs are measured (packed or
    /// decompressed into a file without a name, gone when the run ends) [default: $TMPDIR, else
    /// /var/tmp].
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// Bound on each request to an http(s):// cache: a narinfo's whole answer; for a NAR the
    /// wait for the answer, then for each piece of it (a stalled transfer is resumed).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = hydra_bottleneck::status::parse_interval)]
    timeout: Duration,
    /// Project each codec onto the farm's output volume (from --db, --snapshot or the sample):
    /// core-hours a day, cores for the busiest hour, TiB a month, and money.
    #[arg(long)]
    project: bool,
    /// With --project: a TOML cost file (currency, core_hour, storage_tib_month, egress_tib,
    /// egress_tib_month; machine_month for `report`); missing fields take the documented
    /// defaults.
    #[arg(long, value_name = "FILE", requires = "project")]
    costs: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// Scenario files (TOML; see scenarios/): compared side by side with the baseline. Takes
    /// several (`--scenario scenarios/*.toml`) and may be repeated.
    #[arg(long, value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append)]
    scenario: Vec<PathBuf>,
    /// The machines file (/etc/nix/machines format); else the one that came with the data,
    /// else machines are inferred from the history (and said so).
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// Runs per configuration, each with its own seed: the tables show median (lowest–highest).
    #[arg(long, value_name = "N", default_value_t = hydra_bottleneck::model::DEFAULT_SEEDS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    seeds: u32,
    /// Local worker slots of the queue-runner host in the history (default: the sample's, else 30).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    local_workers: Option<u32>,
    /// Results of `compress --format json`: codec speeds and ratios measured on your NARs.
    #[arg(long, value_name = "FILE")]
    compression: Option<PathBuf>,
    /// A TOML cost file (see `compress --project`), for cost per month.
    #[arg(long, value_name = "FILE")]
    costs: Option<PathBuf>,
    /// Estimate dependencies with this gap in seconds even where ground truth exists.
    #[arg(long, value_name = "SECONDS")]
    gap: Option<i64>,
    /// Skip the load sweep that finds the binding constraint.
    #[arg(long)]
    no_verdict: bool,
    /// A queue-runner status JSON (a file, or the URL of /queue-runner-status): its per-machine
    /// step times join the calibration.
    #[arg(long, value_name = "FILE|URL")]
    status: Option<String>,
    #[command(flatten)]
    drv: DrvStoreArg,
    #[command(flatten)]
    series: SeriesArg,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The machines file (/etc/nix/machines format) for configured slot counts and features;
    /// without it, the one that came with the data, else slots inferred from peak concurrency.
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// A TOML cost file (currency, machine_month, machine_month_by_system, core_hour,
    /// storage_tib_month, egress_tib, egress_tib_month); missing fields take the documented
    /// defaults. Every money figure is an estimate from these prices.
    #[arg(long, value_name = "FILE")]
    costs: Option<PathBuf>,
    /// The directory to write (default: reports/<date>-<source>/, numbered if it exists).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace an existing --out directory (only once the new report is complete).
    #[arg(long)]
    force: bool,
    /// Reuse a codec measurement (the output of `compress --format json`, or a report's
    /// compression.json) instead of measuring now.
    #[arg(long, value_name = "FILE", conflicts_with = "no_compression")]
    compression: Option<PathBuf>,
    /// Leave out the codec measurement and the compression section.
    #[arg(long)]
    no_compression: bool,
    /// Codecs to measure when no --compression file is given.
    #[arg(long, value_name = "LIST", default_value = app::report::DEFAULT_CODECS)]
    codecs: String,
    /// Size of the default local corpus measured when no --compression file is given, MiB.
    #[arg(long, value_name = "MIB", default_value_t = app::report::DEFAULT_CORPUS_MIB)]
    corpus_mib: u64,
    /// An earlier report's directory: adds a before/after column for each headline figure.
    #[arg(long, value_name = "OLD_REPORT_DIR")]
    compare: Option<PathBuf>,
    /// Write the charts as SVG only (no PNG copies).
    #[arg(long)]
    no_png: bool,
    /// What-if scenarios for the simulation section (several after one flag, or the flag
    /// repeated); without any, the examples of scenarios/ built into the tool.
    #[arg(long, value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append,
          conflicts_with = "no_simulation")]
    scenario: Vec<PathBuf>,
    /// Simulation runs per configuration, each with its own seed.
    #[arg(long, value_name = "N", default_value_t = hydra_bottleneck::model::DEFAULT_SEEDS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    seeds: u32,
    /// Local worker slots of the queue-runner host in the history (default: the sample's, else 30).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    local_workers: Option<u32>,
    /// Leave out the simulation section.
    #[arg(long)]
    no_simulation: bool,
    #[command(flatten)]
    drv: DrvStoreArg,
    #[command(flatten)]
    series: SeriesArg,
}

/// `status`: one document (file, `-`, URL), a watch that collects a series, or a series summary.
#[derive(Args, Debug)]
struct StatusArgs {
    /// A saved status JSON file, `-` for stdin, or the URL of a Hydra's /queue-runner-status
    /// (C++ runner) or the Rust runner's /status; or the same of a /metrics text (the Rust
    /// runner's, or hydra_exporter's).
    #[arg(
        value_name = "SOURCE",
        required_unless_present_any = ["watch", "series"],
        conflicts_with_all = ["watch", "series"]
    )]
    source: Option<String>,
    /// Poll this status or /metrics URL and append one JSON line per sample to --out, until
    /// Ctrl-C or --samples.
    #[arg(long, value_name = "URL", requires = "out", conflicts_with = "series")]
    watch: Option<String>,
    /// With --watch: the JSON-lines file to append to (created if missing, never truncated).
    #[arg(long, value_name = "FILE.jsonl", requires = "watch")]
    out: Option<PathBuf>,
    /// With --watch: time between samples (30s, 500ms, 2m); doubled after each failure, up to
    /// ten minutes.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = hydra_bottleneck::status::parse_interval)]
    interval: Duration,
    /// Bound on one HTTP request, connect to last byte.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = hydra_bottleneck::status::parse_interval)]
    timeout: Duration,
    /// With --watch: stop after this many requests.
    #[arg(long, value_name = "N", requires = "watch")]
    samples: Option<u64>,
    /// Summarise a series written by --watch.
    #[arg(long, value_name = "FILE.jsonl")]
    series: Option<PathBuf>,
    /// The build machines file (/etc/nix/machines format), for maxJobs and free slots where
    /// the runner does not report them.
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SnapshotArgs {
    /// Directory to write; it must not exist or be empty, unless --force.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace an existing snapshot at --out (only once the new one is complete).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    drv: DrvStoreArg,
    #[command(flatten)]
    series: SeriesArg,
    /// Write a snapshot safe to publish: only allowlisted columns, hidden projects and jobsets
    /// left out, no machines file, .drv store or connection details (README: public snapshots).
    #[arg(long)]
    public: bool,
    /// With --public: replace machine names by pseudonyms keyed by the bytes of KEYFILE
    /// (HMAC-SHA256; the same key gives the same pseudonyms in every snapshot).
    #[arg(long, value_name = "KEYFILE", requires = "public")]
    pseudonymize_machines: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SampleArgs {
    /// Write the sample as a snapshot into this directory.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "into",
        conflicts_with = "into"
    )]
    out: Option<PathBuf>,
    /// Load the sample into this empty database (the only command that writes): one whose
    /// schema of the search path (public, as a rule) holds no table, view or sequence yet.
    #[arg(long, value_name = "CONNINFO")]
    into: Option<String>,
    /// Seed of the generator: the same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Grow the workload linearly (builds and machines); 10 gives about a million steps.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Consecutive weeks ending with the preset's, each simulated in turn and written as it is
    /// made (52 at scale 6.5: a year of a large farm, about 39 million steps). Only the last
    /// week keeps the runner's series and the .drv files, as a Prometheus and a store keep
    /// recent history.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=hydra_bottleneck::sample::MAX_WEEKS as i64))]
    weeks: u32,
    /// With --into: the Hydra schema version to create when the database has no Hydra tables
    /// (89: store paths part-way through hydra-backfill-store-dirs; ignored when the database
    /// already holds a new Hydra's empty tables, which are filled as they are).
    #[arg(long, default_value = "80", value_parser = ["80", "87", "88", "89", "90"])]
    schema: String,
    /// With --out: replace an existing directory (only once the new one is complete); with
    /// --series-out, an existing file.
    #[arg(long)]
    force: bool,
    /// With --out: leave the derivations' .drv files out of the snapshot (about 4 KiB of disk
    /// a step: 4 GB at a million steps); the ledger then estimates dependencies, as on a
    /// Hydra whose store is not at hand.
    #[arg(long, requires = "out")]
    without_drv_store: bool,
    /// Also write the series the sample's runner would have exported, every 30 s, as a
    /// `status --watch` file of /metrics scrapes (read it back with --runner-series).
    #[arg(long, value_name = "FILE")]
    series_out: Option<PathBuf>,
    /// With --series-out: whose metric names: the Rust runner's own (hydraqueuerunner_*) or
    /// hydra_exporter's reading of the C++ runner (hydra_queue_runner_*).
    #[arg(
        long,
        value_enum,
        default_value = "hydra-exporter",
        requires = "series_out"
    )]
    series_names: SeriesNames,
}

/// The metric names `sample --series-out` writes under.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SeriesNames {
    RustRunner,
    HydraExporter,
}

/// Runs the program; the whole of `main`.
pub(crate) fn main() -> ExitCode {
    hydra_bottleneck::alloc::return_freed_blocks();
    let cli = Cli::parse();
    init_logging(cli.common.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if matches!(e.downcast_ref(), Some(hydra_bottleneck::Error::Interrupted)) => {
            let sig = hydra_bottleneck::interrupt::signal().unwrap_or(libc::SIGINT);
            let by = match sig {
                libc::SIGINT => String::new(),
                other => format!(" by {}", hydra_bottleneck::interrupt::name(other)),
            };
            eprintln!("hydra-bottleneck: interrupted{by}; nothing half-written was left behind");
            ExitCode::from(exit_code_for(sig))
        }
        Err(e) => {
            eprintln!("hydra-bottleneck: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code after a stop asked for by `sig`: 128 + its number (130 for SIGINT, 143 for
/// SIGTERM, 129 for SIGHUP), what a shell reports for a process that signal ended, so scripts
/// see the same whether we stopped at a safe point or were killed outright.
fn exit_code_for(sig: libc::c_int) -> u8 {
    u8::try_from(128 + sig).unwrap_or(130)
}

fn init_logging(quiet: bool) {
    hydra_bottleneck::progress::started();
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HYDRA_BOTTLENECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}

/// A note on stderr.
fn to_stderr(msg: &str) {
    eprintln!("{msg}");
}

impl Common {
    /// What every command is given: the source, the window, and notes and progress on stderr
    /// unless --quiet.
    fn context(&self) -> Context<'static> {
        Context {
            source: match (&self.db, &self.snapshot) {
                (Some(db), _) => SourceSpec::Postgres(db.clone()),
                (None, Some(dir)) => SourceSpec::Snapshot(dir.clone()),
                (None, None) => SourceSpec::Sample(SampleSpec {
                    preset: self.preset,
                    ..SampleSpec::default()
                }),
            },
            window: WindowSpec {
                since: self.since,
                until: self.until,
            },
            runner: self.runner.map(|r| r.0),
            runner_switch: self.runner.and_then(|r| r.1),
            statement_timeout: Duration::from_secs(self.statement_timeout.max(1)),
            progress: Progress::new(self.quiet),
            note: if self.quiet { &|_| {} } else { &to_stderr },
        }
    }

    fn format(&self) -> Format {
        match self.format {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
        }
    }
}

/// Prints an outcome on stdout.
fn print(outcome: &dyn Render, format: Format) -> hydra_bottleneck::Result<()> {
    use std::io::Write;
    // Buffered: a result of a million rows is written a row at a time.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    outcome.render(&mut Printer::new(&mut out, "stdout", format))?;
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(hydra_bottleneck::Error::io("stdout", e))
        }
        _ => Ok(()),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = cli.common.context();
    let format = cli.common.format();
    match cli.command {
        Command::Snapshot(a) => print(&app::snapshot::run(&ctx, &a.into())?, format)?,
        Command::Sample(a) => print(
            &app::sample::run(&ctx, &a.options(cli.common.preset)?)?,
            format,
        )?,
        Command::Analyze(a) => {
            let opts: app::analyze::AnalyzeOptions = a.into();
            // Refused before the data is read, which may take minutes.
            app::analyze::printable(&opts.findings, format)?;
            print(&app::analyze::run(&ctx, &opts)?, format)?
        }
        Command::Report(a) => print(&app::report::run(&ctx, &a.into())?, format)?,
        Command::Query(a) => print(&app::query::run(&ctx, &a.into())?, format)?,
        Command::Simulate(a) => print(&app::simulate::run(&ctx, &a.into())?, format)?,
        Command::Compress(a) => print(&app::compress::run(&ctx, &a.into())?, format)?,
        Command::Status(a) => print(&app::status::run(&ctx, &a.into())?, format)?,
    }
    Ok(())
}

impl From<SnapshotArgs> for app::snapshot::SnapshotOptions {
    fn from(a: SnapshotArgs) -> Self {
        app::snapshot::SnapshotOptions {
            out: a.out,
            force: a.force,
            drv_store: a.drv.drv_store,
            series: a.series.source(),
            public: a.public,
            pseudonym_key: a.pseudonymize_machines,
        }
    }
}

impl SampleArgs {
    /// What `sample` is asked, the workload being `preset` (the global `--preset`).
    fn options(self, preset: Preset) -> hydra_bottleneck::Result<app::sample::SampleOptions> {
        let a = self;
        use app::sample::SampleTarget;
        let target = match (a.out, a.into) {
            (Some(out), _) => SampleTarget::Snapshot {
                out,
                force: a.force,
                drv_store: !a.without_drv_store,
            },
            (None, Some(conninfo)) => SampleTarget::Database {
                conninfo,
                schema: a.schema.parse().map_err(hydra_bottleneck::Error::Usage)?,
            },
            (None, None) => unreachable!("clap requires --out or --into"),
        };
        let series = a.series_out.map(|file| app::sample::SeriesOut {
            file,
            names: match a.series_names {
                SeriesNames::RustRunner => {
                    hydra_bottleneck::status::exporters::Exporter::RustRunner
                }
                SeriesNames::HydraExporter => {
                    hydra_bottleneck::status::exporters::Exporter::HydraExporter
                }
            },
            force: a.force,
        });
        Ok(app::sample::SampleOptions {
            series,
            weeks: a.weeks,
            spec: SampleSpec {
                preset,
                seed: a.seed,
                scale: a.scale,
            },
            target,
        })
    }
}

impl From<AnalyzeArgs> for app::analyze::AnalyzeOptions {
    fn from(a: AnalyzeArgs) -> Self {
        app::analyze::AnalyzeOptions {
            findings: a
                .findings
                .into_iter()
                .map(|f| match f {
                    FindingArg::All => Finding::All,
                    FindingArg::Ledger => Finding::Ledger,
                    FindingArg::Waiting => Finding::Waiting,
                    FindingArg::Utilization => Finding::Utilization,
                    FindingArg::Waste => Finding::Waste,
                    FindingArg::Quality => Finding::Quality,
                    FindingArg::Deps => Finding::Deps,
                    FindingArg::Overhead => Finding::Overhead,
                })
                .collect(),
            machines: a.machines,
            gap_s: a.gap,
            compression: a.compression,
            drv_store: a.drv.drv_store,
            series: a.series.source(),
        }
    }
}

impl From<ReportArgs> for app::report::ReportOptions {
    fn from(a: ReportArgs) -> Self {
        app::report::ReportOptions {
            machines: a.machines,
            costs: a.costs,
            out: a.out,
            force: a.force,
            compression: a.compression,
            no_compression: a.no_compression,
            codecs: a.codecs,
            corpus_mib: a.corpus_mib,
            compare: a.compare,
            png: !a.no_png,
            scenarios: a.scenario,
            seeds: a.seeds,
            local_workers: a.local_workers,
            simulation: !a.no_simulation,
            drv_store: a.drv.drv_store,
            series: a.series.source(),
        }
    }
}

impl From<QueryArgs> for app::query::QueryOptions {
    fn from(a: QueryArgs) -> Self {
        use app::query::QueryAction as Action;
        app::query::QueryOptions {
            action: match a.action {
                QueryAction::List => Action::List,
                QueryAction::Run { name, params } => Action::Run { name, params },
                QueryAction::Sql {
                    sql,
                    allow_privileged_role,
                    max_rows,
                } => Action::Sql {
                    sql,
                    opts: hydra_bottleneck::query::SqlOptions {
                        allow_privileged_role,
                        max_rows,
                    },
                },
            },
            parquet: a.parquet,
            force: a.force,
        }
    }
}

impl From<SimulateArgs> for app::simulate::SimulateOptions {
    fn from(a: SimulateArgs) -> Self {
        app::simulate::SimulateOptions {
            scenarios: a.scenario,
            machines: a.machines,
            seeds: a.seeds,
            local_workers: a.local_workers,
            compression: a.compression,
            costs: a.costs,
            gap_s: a.gap,
            verdict: !a.no_verdict,
            status: a
                .status
                .as_deref()
                .map(hydra_bottleneck::status::Source::parse),
            drv_store: a.drv.drv_store,
            series: a.series.source(),
        }
    }
}

impl From<CompressArgs> for app::compress::CompressOptions {
    fn from(a: CompressArgs) -> Self {
        app::compress::CompressOptions {
            inputs: a.input,
            paths: a.paths,
            codecs: a.codecs,
            sample: a.sample,
            per_nar: a.per_nar,
            corpus_mib: a.corpus_mib,
            from_outputs: a.from_outputs,
            caches: a.cache,
            download_dir: a.download_dir,
            max_nar_mib: a.max_nar_mib,
            in_memory_mib: a.in_memory_mib,
            spill_dir: a.spill_dir,
            timeout: a.timeout,
            project: a.project,
            costs: a.costs,
        }
    }
}

impl From<StatusArgs> for app::status::StatusOptions {
    fn from(a: StatusArgs) -> Self {
        use app::status::StatusOptions;
        match (a.watch, a.out, a.series, a.source) {
            (Some(url), Some(out), _, _) => {
                StatusOptions::Watch(hydra_bottleneck::status::WatchOptions {
                    url,
                    out,
                    interval: a.interval,
                    timeout: a.timeout,
                    samples: a.samples,
                })
            }
            (Some(_), None, _, _) => unreachable!("clap requires --out with --watch"),
            (None, _, Some(path), _) => StatusOptions::Series {
                path,
                machines: a.machines,
            },
            (None, _, None, Some(source)) => StatusOptions::Show {
                source: hydra_bottleneck::status::Source::parse(&source),
                machines: a.machines,
                timeout: a.timeout,
            },
            (None, _, None, None) => {
                unreachable!("clap requires SOURCE without --watch or --series")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn db_and_snapshot_exclude_each_other() {
        let r = Cli::try_parse_from([
            "hb",
            "snapshot",
            "--out",
            "x",
            "--db",
            "a",
            "--snapshot",
            "b",
        ]);
        assert!(r.is_err());
    }
}
