//! The command line: the only module that knows clap. It turns arguments into the library's
//! options, runs the command, and maps failures to exit codes (0 ok, 1 failure, 2 usage).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dataset::Runner;
use crate::output::{Existing, Format, print_rows};
use crate::progress::Progress;
use crate::source::into::Ddl;
use crate::source::{self, Preset, ReadOptions, SampleSpec, SourceSpec, snapshot};
use crate::window::{TimeSpec, WindowSpec};

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
pub struct Cli {
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
    /// `--db ''` takes everything from the environment.
    #[arg(
        long,
        global = true,
        value_name = "CONNINFO",
        conflicts_with = "snapshot"
    )]
    db: Option<String>,
    /// Read this snapshot directory (written by `snapshot` or `sample --out`).
    #[arg(long, global = true, value_name = "DIR")]
    snapshot: Option<PathBuf>,
    /// Start of the window: a date (2026-11-01), date and time, unix timestamp, or a duration
    /// back from now, or from the end of a snapshot (30d, 12h, 1w).
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time)]
    since: Option<TimeSpec>,
    /// End of the window (exclusive), in the same forms as --since.
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time)]
    until: Option<TimeSpec>,
    /// Which queue runner wrote the steps (their times mean different things); detected from
    /// the schema when not given.
    #[arg(long, global = true, value_enum)]
    runner: Option<RunnerArg>,
    /// How data is printed on stdout.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
    /// No progress or notes on stderr; errors still go there.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Upper bound on every database statement, in seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 900)]
    statement_timeout: u64,
}

fn parse_time(s: &str) -> Result<TimeSpec, String> {
    crate::window::parse_time(s)
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum RunnerArg {
    Cpp,
    Rust,
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
    /// Run a named read-only query, or ad-hoc SQL, against the database.
    Query(QueryArgs),
    /// Replay the history through a model of the queue runner and answer what-if questions.
    Simulate(SimulateArgs),
    /// Measure xz and zstd on NARs and project the cost onto the farm's output.
    Compress(CompressArgs),
    /// Read the queue runner's status JSON, once or as a time series.
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
    Sql {
        /// The statement.
        sql: String,
        /// Run even when the role is a superuser or may act outside transactions (server
        /// files, programs, signals); a role that can only read is the safe choice.
        #[arg(long)]
        allow_privileged_role: bool,
        /// The most rows the result may have; a larger result is refused, not held.
        #[arg(long, value_name = "N", default_value_t = crate::query::DEFAULT_MAX_ROWS)]
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
    /// Which finding to print (`all` only with --format json).
    #[arg(value_enum, default_value_t = FindingArg::Ledger)]
    finding: FindingArg,
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
    #[arg(long, value_name = "MIB", default_value_t = 64)]
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
    #[arg(long, value_name = "MIB", default_value_t = crate::compress::httpcache::DEFAULT_MAX_NAR_MIB)]
    max_nar_mib: u64,
    /// NARs up to this size are held in memory while their codecs are measured; larger ones wait
    /// in a file (--spill-dir) and every codec streams them. 0 streams every NAR: single-frame
    /// zstd levels then compress as they do when streaming, as Nix's compression sink does.
    #[arg(long, value_name = "MIB", default_value_t = crate::compress::spool::IN_MEMORY_MAX >> 20)]
    in_memory_mib: u64,
    /// Where a NAR larger than --in-memory-mib waits while its codecs are measured (packed or
    /// decompressed into a file without a name, gone when the run ends) [default: $TMPDIR, else
    /// /var/tmp].
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// Bound on each request to an http(s):// cache: a narinfo's whole answer; for a NAR the
    /// wait for the answer, then for each piece of it (a stalled transfer is resumed).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::status::parse_interval)]
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
    /// A scenario file (TOML; see scenarios/): compared side by side with the baseline
    /// (repeatable).
    #[arg(long, value_name = "FILE")]
    scenario: Vec<PathBuf>,
    /// The machines file (/etc/nix/machines format); else the one that came with the data,
    /// else machines are inferred from the history (and said so).
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// Runs per configuration, each with its own seed: the tables show median (lowest–highest).
    #[arg(long, value_name = "N", default_value_t = crate::model::DEFAULT_SEEDS,
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
    #[arg(long, value_name = "LIST", default_value = "xz-6,zstd-3,zstd-19")]
    codecs: String,
    /// Size of the default local corpus measured when no --compression file is given, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    corpus_mib: u64,
    /// An earlier report's directory: adds a before/after column for each headline figure.
    #[arg(long, value_name = "OLD_REPORT_DIR")]
    compare: Option<PathBuf>,
    /// Write the charts as SVG only (no PNG copies).
    #[arg(long)]
    no_png: bool,
    /// A what-if scenario for the simulation section (repeatable); without any, the examples
    /// of scenarios/ built into the tool.
    #[arg(long, value_name = "FILE", conflicts_with = "no_simulation")]
    scenario: Vec<PathBuf>,
    /// Simulation runs per configuration, each with its own seed.
    #[arg(long, value_name = "N", default_value_t = crate::model::DEFAULT_SEEDS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    seeds: u32,
    /// Local worker slots of the queue-runner host in the history (default: the sample's, else 30).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    local_workers: Option<u32>,
    /// Leave out the simulation section.
    #[arg(long)]
    no_simulation: bool,
}

/// `status`: one document (file, `-`, URL), a watch that collects a series, or a series summary.
#[derive(Args, Debug)]
struct StatusArgs {
    /// A saved status JSON file, `-` for stdin, or the URL of a Hydra's /queue-runner-status
    /// (C++ runner) or the Rust runner's /status.
    #[arg(
        value_name = "SOURCE",
        required_unless_present_any = ["watch", "series"],
        conflicts_with_all = ["watch", "series"]
    )]
    source: Option<String>,
    /// Poll this status URL and append one JSON line per sample to --out, until Ctrl-C or
    /// --samples.
    #[arg(long, value_name = "URL", requires = "out", conflicts_with = "series")]
    watch: Option<String>,
    /// With --watch: the JSON-lines file to append to (created if missing, never truncated).
    #[arg(long, value_name = "FILE.jsonl", requires = "watch")]
    out: Option<PathBuf>,
    /// With --watch: time between samples (30s, 500ms, 2m); doubled after each failure, up to
    /// ten minutes.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::status::parse_interval)]
    interval: Duration,
    /// Bound on one HTTP request, connect to last byte.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = crate::status::parse_interval)]
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
    /// The workload to generate.
    #[arg(long, default_value = "nixos-week")]
    preset: Preset,
    /// Seed of the generator: the same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Grow the workload linearly (builds and machines); 10 gives about a million steps.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// With --into: the Hydra schema version to create when the database has no Hydra tables.
    #[arg(long, default_value = "80", value_parser = ["80", "87"])]
    schema: String,
    /// With --out: replace an existing directory (only once the new one is complete).
    #[arg(long)]
    force: bool,
}

/// Runs the program; the whole of `main`.
pub fn main() -> ExitCode {
    crate::alloc::return_freed_blocks();
    let cli = Cli::parse();
    init_logging(cli.common.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if matches!(e.downcast_ref(), Some(crate::Error::Interrupted)) => {
            let sig = crate::interrupt::signal().unwrap_or(libc::SIGINT);
            let by = match sig {
                libc::SIGINT => String::new(),
                other => format!(" by {}", crate::interrupt::name(other)),
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

impl Common {
    fn source(&self) -> SourceSpec {
        match (&self.db, &self.snapshot) {
            (Some(db), _) => SourceSpec::Postgres(db.clone()),
            (None, Some(dir)) => SourceSpec::Snapshot(dir.clone()),
            (None, None) => SourceSpec::Sample(SampleSpec::default()),
        }
    }

    /// How to read the source; `omit`: the columns the command never reads.
    fn read_options(&self, omit: crate::dataset::Omit) -> ReadOptions {
        ReadOptions {
            window: WindowSpec {
                since: self.since,
                until: self.until,
            },
            runner: self.runner.map(|r| match r {
                RunnerArg::Cpp => Runner::Cpp,
                RunnerArg::Rust => Runner::Rust,
            }),
            statement_timeout: Duration::from_secs(self.statement_timeout.max(1)),
            progress: Progress::new(self.quiet),
            omit,
        }
    }

    fn format(&self) -> Format {
        match self.format {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
        }
    }

    /// A note on stderr, unless --quiet.
    fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    source::postgres::runtime().context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let common = &cli.common;
    match cli.command {
        Command::Snapshot(args) => cmd_snapshot(common, &args),
        Command::Sample(args) => cmd_sample(common, &args),
        Command::Analyze(args) => cmd_analyze(common, &args),
        Command::Report(args) => cmd_report(common, &args),
        Command::Query(args) => cmd_query(common, &args),
        Command::Simulate(args) => cmd_simulate(common, &args),
        Command::Compress(args) => cmd_compress(common, &args),
        Command::Status(args) => cmd_status(common, &args),
    }
}

/// Bound on fetching a status document given by URL: one small JSON answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

fn cmd_simulate(common: &Common, args: &SimulateArgs) -> anyhow::Result<()> {
    use crate::model::{self, table};
    let scenarios = args
        .scenario
        .iter()
        .map(|p| model::scenario::read(p))
        .collect::<crate::Result<Vec<_>>>()?;
    let machines = args
        .machines
        .as_deref()
        .map(crate::nix::machines::read)
        .transpose()?;
    let codecs = match &args.compression {
        Some(p) => model::measured_codecs(p)?,
        None => Vec::new(),
    };
    let costs = match &args.costs {
        Some(p) => crate::compress::project::read_costs(p)?,
        None => crate::compress::project::Costs::default(),
    };
    // Read before the dataset: a bad status document should fail before minutes of loading.
    let status = match &args.status {
        Some(s) => {
            let source = crate::status::Source::parse(s);
            let doc = crate::status::load(&source, STATUS_TIMEOUT)?;
            Some((source.describe(), doc))
        }
        None => None,
    };
    let spec = common.source();
    if spec.is_sample() {
        common.note("no --db or --snapshot given: simulating the built-in sample workload");
    }
    let ds = source::load(&spec, &common.read_options(crate::dataset::NOT_ANALYSED))?;
    let opts = model::Options {
        machines,
        scenarios,
        seeds: args.seeds,
        local_workers: args.local_workers,
        codecs,
        costs,
        gap_s: args.gap,
        verdict: !args.no_verdict,
        status,
    };
    let progress = Progress::new(common.quiet);
    let stage = progress.stage("simulating");
    let summary = model::run(&ds, &opts)?;
    stage.done();
    let format = common.format();
    if format == Format::Json {
        print_rows(format, &[], &[], &summary)?;
        return Ok(());
    }
    let (header, rows) = table::comparison(&summary);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    if format == Format::Csv {
        print_rows(format, &header, &rows, &())?;
        return Ok(());
    }
    println!(
        "{}: {} steps, {} dependencies ({}); runner {}",
        summary.origin, summary.tasks, summary.dependencies, summary.deps_from, summary.runner
    );
    println!("\nCalibration: a replay of the observed configuration against the history");
    print_rows(
        format,
        &table::CALIBRATION_HEADER,
        &table::calibration_rows(&summary),
        &(),
    )?;
    println!(
        "\nBaseline and scenarios: median (lowest–highest) over {} seeds",
        summary.seeds.len()
    );
    print_rows(format, &header, &rows, &())?;
    if let Some(c) = &summary.status_check {
        println!("\nStep time per machine: the replay against {}", c.origin);
        print_rows(format, &table::STATUS_HEADER, &table::status_rows(c), &())?;
        if !c.unmatched.is_empty() {
            println!(
                "not compared (not in the data, or no steps): {}",
                c.unmatched.join(", ")
            );
        }
    }
    if let Some(v) = &summary.verdict {
        println!("\nBinding constraint: {}", v.statement);
    }
    println!("\nAssumptions:");
    for a in std::iter::once(&summary.machines_from)
        .chain(std::iter::once(&summary.local_workers_from))
        .chain(&summary.assumptions)
    {
        println!("- {a}");
    }
    Ok(())
}

/// `reports/<date>-<source>`; written with [`Existing::NextFree`], which numbers it `-2`, `-3`,
/// … when taken: the default never replaces an earlier report.
fn default_report_dir(spec: &SourceSpec) -> PathBuf {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let source = match spec {
        SourceSpec::Sample(_) => "sample".to_string(),
        SourceSpec::Snapshot(dir) => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "snapshot".into()),
        SourceSpec::Postgres(_) => "db".to_string(),
    };
    let source: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    PathBuf::from("reports").join(format!("{date}-{source}"))
}

/// The report's simulation replays at most this many steps, the latest whole days: it runs
/// seven configurations with five seeds each and a load sweep, about forty runs, and a run costs
/// about 3 s and 1 GB per million steps (release build). A million steps, ten times the
/// built-in sample's week, is enough for every scenario's effect to show; `simulate` itself is
/// unbounded.
const REPORT_SIMULATION_MAX_STEPS: usize = 1_000_000;

fn cmd_report(common: &Common, args: &ReportArgs) -> anyhow::Result<()> {
    use crate::compress;
    use crate::report;
    let progress = Progress::new(common.quiet);
    let spec = common.source();
    // Everything given on the command line is read and checked before minutes of work.
    let previous = args
        .compare
        .as_deref()
        .map(report::compare::read)
        .transpose()?;
    let costs = match &args.costs {
        Some(p) => compress::project::read_costs(p)?,
        None => compress::project::Costs::default(),
    };
    let scenarios = if args.scenario.is_empty() {
        crate::model::scenario::examples()
    } else {
        args.scenario
            .iter()
            .map(|p| crate::model::scenario::read(p))
            .collect::<crate::Result<Vec<_>>>()?
    };
    let saved = match &args.compression {
        Some(p) => {
            let bytes = compress::read_saved_bytes(p)?;
            Some((compress::parse_saved(&bytes, p)?, bytes, p))
        }
        None => None,
    };
    let codecs = compress::parse_list(&args.codecs)?;
    let (out, existing) = match &args.out {
        Some(dir) => {
            if !args.force && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(crate::Error::Invalid(format!(
                    "{} exists and is not empty; choose another directory or pass --force to \
                     replace it",
                    dir.display()
                ))
                .into());
            }
            let existing = if args.force {
                Existing::Replace
            } else {
                Existing::Refuse
            };
            (dir.clone(), existing)
        }
        // The name is taken when the report is complete, atomically: a run that finishes
        // meanwhile (or a second run started at the same moment) keeps its directory.
        None => (default_report_dir(&spec), Existing::NextFree),
    };
    if spec.is_sample() {
        common.note("no --db or --snapshot given: reporting on the built-in sample workload");
    }

    // Ctrl-C stops at the next stage: nothing is written until the report is complete, and
    // an old report given with --force stays as it was.
    crate::interrupt::install()?;
    let stage = progress.stage("reading the history");
    let mut ds = source::load(&spec, &common.read_options(crate::dataset::NOT_ANALYSED))?;
    stage.done();
    let machines = match &args.machines {
        Some(p) => Some(crate::nix::machines::read(p)?),
        None => ds
            .machines
            .take()
            .map(|text| crate::nix::machines::parse(&text))
            .transpose()
            .context("the machines file that came with the data")?,
    };

    let compression = if let Some((s, bytes, path)) = saved {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Some((
            report::Compression {
                source: format!("read from {name} (saved `compress --format json` results)"),
                default_corpus: s.default_corpus,
                nars: s.nars,
                nar_bytes: s.nar_bytes,
                codecs: s.codecs,
            },
            bytes,
        ))
    } else if args.no_compression {
        None
    } else {
        let stage = progress.stage("measuring codecs on a small local corpus");
        let cap = args.corpus_mib.max(1).saturating_mul(1 << 20);
        let opts = compress::Options {
            codecs,
            corpus_cap: cap,
            nar_cap: compress::DEFAULT_NAR_CAP.min(cap),
            ..compress::Options::default()
        };
        let quiet = |_: &str| {};
        let measured = compress::run(&opts, &quiet)?;
        stage.done();
        let bytes = serde_json::to_vec_pretty(&measured).context("serialising the measurement")?;
        Some((
            report::Compression {
                source: format!(
                    "measured now on this machine ({} threads): {} of local files, at most {} MiB",
                    measured.threads,
                    if measured.default_corpus {
                        "the default corpus"
                    } else {
                        "inputs"
                    },
                    args.corpus_mib
                ),
                default_corpus: measured.default_corpus,
                nars: measured.corpus.len(),
                nar_bytes: measured.corpus.iter().map(|c| c.nar_size).sum(),
                codecs: measured.codecs,
            },
            bytes,
        ))
    };

    let stage = progress.stage("analysing");
    let opts = crate::analysis::Options {
        machines: machines.clone(),
        gap_s: None,
        codec_speeds: compression
            .as_ref()
            .map(|(c, _)| {
                c.codecs
                    .iter()
                    .filter(|k| k.compress_mb_s_core.is_finite() && k.compress_mb_s_core > 0.0)
                    .map(|k| (k.codec.clone(), k.compress_mb_s_core))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let findings = crate::analysis::analyze(&ds, &opts)?;
    let data = report::DataFacts::of(&ds)?;
    stage.done();
    crate::interrupt::check()?;
    let simulation = if args.no_simulation {
        None
    } else {
        let stage = progress.stage("simulating the scenarios");
        let codecs = compression
            .as_ref()
            .map(|(c, _)| {
                c.codecs
                    .iter()
                    .filter(|k| k.compress_mb_s_core.is_finite() && k.compress_mb_s_core > 0.0)
                    .map(|k| crate::model::Codec {
                        name: k.codec.clone(),
                        mb_s_core: k.compress_mb_s_core,
                        ratio: k.ratio_pct / 100.0,
                        source: "measured for this report".into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let bounded = crate::model::latest_days(&ds, REPORT_SIMULATION_MAX_STEPS)?;
        let (replayed, note) = match bounded {
            Some((latest, note)) => {
                common.note(&format!("simulation: {note}"));
                // The whole history is not read again: free it before the replay's own memory.
                drop(ds);
                (latest, Some(note))
            }
            None => (ds, None),
        };
        let summary = crate::model::run(
            &replayed,
            &crate::model::Options {
                machines: machines.clone(),
                scenarios,
                seeds: args.seeds,
                local_workers: args.local_workers,
                codecs,
                costs: costs.clone(),
                gap_s: None,
                verdict: true,
                status: None,
            },
        )?;
        stage.done();
        drop(replayed);
        let mut sim = report::Simulation::from_summary(&summary);
        if let Some(note) = note {
            // After the binding constraint, before the replay's counts it explains.
            let at = usize::from(summary.verdict.is_some()).min(sim.verdict.len());
            sim.verdict.insert(at, format!("The simulation {note}."));
        }
        Some(sim)
    };
    let stage = progress.stage("assembling the report");
    let (compression, compression_json) = match compression {
        Some((c, b)) => (Some(c), Some(b)),
        None => (None, None),
    };
    let built = report::build(report::Inputs {
        data,
        findings: &findings,
        machines: machines.as_deref(),
        costs: &costs,
        compression,
        simulation,
        generated_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        previous,
    })?;
    stage.done();

    crate::interrupt::check()?;
    let stage = progress.stage("drawing charts and writing the report");
    let written = report::write(
        &built,
        &out,
        &report::WriteOptions {
            png: !args.no_png,
            existing,
            compression_json,
        },
    )?;
    stage.done();
    print!("{}", report::summary_text(&built, &written));
    Ok(())
}

fn cmd_status(common: &Common, args: &StatusArgs) -> anyhow::Result<()> {
    use crate::status;
    let format = common.format();
    if let Some(url) = &args.watch {
        // Ctrl-C is how an open-ended watch ends: it stops at once, between lines.
        crate::interrupt::install()?;
        let Some(out) = &args.out else {
            unreachable!("clap requires --out with --watch");
        };
        let opts = status::WatchOptions {
            url: url.clone(),
            out: out.clone(),
            interval: args.interval,
            timeout: args.timeout,
            samples: args.samples,
            quiet: common.quiet,
        };
        status::watch(&opts, format)?;
    } else if let Some(path) = &args.series {
        status::show_series(path, args.machines.as_deref(), format, common.quiet)?;
    } else {
        let Some(source) = &args.source else {
            unreachable!("clap requires SOURCE without --watch or --series");
        };
        let opts = status::ShowOptions {
            source: status::Source::parse(source),
            machines: args.machines.clone(),
            timeout: args.timeout,
        };
        status::show(&opts, format)?;
    }
    Ok(())
}

fn cmd_query(common: &Common, args: &QueryArgs) -> anyhow::Result<()> {
    if let QueryAction::List = args.action {
        let all = crate::query::all()?;
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|q| {
                let params = q
                    .params
                    .iter()
                    .map(|p| format!("{}={}", p.name, p.default.as_deref().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![q.name.clone(), params, q.description.clone()]
            })
            .collect();
        print_rows(
            common.format(),
            &["name", "params", "description"],
            &rows,
            &all,
        )?;
        return Ok(());
    }
    let Some(db) = &common.db else {
        return Err(crate::Error::Invalid(
            "`query` reads a live Hydra database: give --db (for a snapshot or the sample, \
             use `analyze`)"
                .into(),
        )
        .into());
    };
    let params = crate::conninfo::resolve(db, &|k| std::env::var(k).ok())?;
    // Refused before the query runs; the write refuses again if the file appeared meanwhile.
    if let Some(path) = &args.parquet
        && !args.force
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(crate::Error::Invalid(format!(
            "{} exists; choose another file or pass --force to replace it",
            path.display()
        ))
        .into());
    }
    let timeout = Duration::from_secs(common.statement_timeout.max(1));
    let table = runtime()?.block_on(async {
        match &args.action {
            QueryAction::Run {
                name,
                params: given,
            } => {
                let q = crate::query::find(name)?;
                crate::source::sql::run_named(&params, &q, given, timeout).await
            }
            QueryAction::Sql {
                sql,
                allow_privileged_role,
                max_rows,
            } => {
                let opts = crate::query::SqlOptions {
                    allow_privileged_role: *allow_privileged_role,
                    max_rows: *max_rows,
                };
                crate::source::sql::run_adhoc(&params, sql, timeout, opts).await
            }
            QueryAction::List => unreachable!("handled above"),
        }
    })?;
    if let Some(path) = &args.parquet {
        crate::query::write_parquet(&table, path, args.force)?;
        common.note(&format!("wrote {}", path.display()));
    }
    let header: Vec<&str> = table.columns.iter().map(String::as_str).collect();
    print_rows(common.format(), &header, &table.strings(), &table.objects())?;
    Ok(())
}

fn cmd_analyze(common: &Common, args: &AnalyzeArgs) -> anyhow::Result<()> {
    use crate::analysis::table::Finding;
    let spec = common.source();
    if spec.is_sample() {
        common.note("no --db or --snapshot given: analysing the built-in sample workload");
    }
    let mut ds = source::load(&spec, &common.read_options(crate::dataset::NOT_ANALYSED))?;
    let machines = match &args.machines {
        Some(p) => Some(crate::nix::machines::read(p)?),
        None => ds
            .machines
            .take()
            .map(|text| crate::nix::machines::parse(&text))
            .transpose()
            .context("the machines file that came with the data")?,
    };
    let codec_speeds = match &args.compression {
        Some(p) => crate::compress::codec_speeds(p)?,
        None => Vec::new(),
    };
    let opts = crate::analysis::Options {
        machines,
        gap_s: args.gap,
        codec_speeds,
    };
    let findings = crate::analysis::analyze(&ds, &opts)?;
    let finding = match args.finding {
        FindingArg::All if common.format() != Format::Json => {
            return Err(crate::Error::Invalid(
                "`analyze all` prints every finding and needs --format json".into(),
            )
            .into());
        }
        FindingArg::All => Finding::All,
        FindingArg::Ledger => Finding::Ledger,
        FindingArg::Waiting => Finding::Waiting,
        FindingArg::Utilization => Finding::Utilization,
        FindingArg::Waste => Finding::Waste,
        FindingArg::Quality => Finding::Quality,
        FindingArg::Deps => Finding::Deps,
        FindingArg::Overhead => Finding::Overhead,
    };
    let (header, rows, json) = crate::analysis::table::tabulate(&findings, finding)?;
    print_rows(common.format(), &header, &rows, &json)?;
    Ok(())
}

fn cmd_snapshot(common: &Common, args: &SnapshotArgs) -> anyhow::Result<()> {
    crate::interrupt::install()?;
    let spec = common.source();
    if spec.is_sample() {
        common.note("no --db or --snapshot given: snapshotting the built-in sample workload");
    }
    let ds = source::load(&spec, &common.read_options(&[]))?;
    common.note(&format!(
        "read {} steps and {} builds from {} ({}; runner {}: {})",
        ds.steps.height(),
        ds.builds.height(),
        ds.meta.origin.describe(),
        ds.meta.window.describe(),
        ds.meta.runner,
        ds.meta.runner_basis
    ));
    let manifest = snapshot::write(&ds, &args.out, args.force)?;
    common.note(&format!("wrote snapshot {}", args.out.display()));
    print_manifest(common.format(), &manifest)
}

fn print_manifest(format: Format, m: &snapshot::Manifest) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = m
        .tables
        .iter()
        .map(|(name, t)| {
            vec![
                name.clone(),
                t.rows.to_string(),
                t.files.len().to_string(),
                t.files.iter().map(|f| f.bytes).sum::<u64>().to_string(),
            ]
        })
        .collect();
    print_rows(format, &["table", "rows", "files", "bytes"], &rows, m)?;
    Ok(())
}

fn cmd_sample(common: &Common, args: &SampleArgs) -> anyhow::Result<()> {
    let spec = SampleSpec {
        preset: args.preset,
        seed: args.seed,
        scale: args.scale,
    };
    if args.out.is_some() {
        // Only the snapshot is staged and safe to stop; `--into` loads in one transaction,
        // which a killed client aborts on the server.
        crate::interrupt::install()?;
    }
    let ds = source::sample::generate(&spec)?;
    if let Some(dir) = &args.out {
        let manifest = snapshot::write(&ds, dir, args.force)?;
        common.note(&format!(
            "wrote the {} sample (seed {}, scale {}) to {}",
            args.preset,
            args.seed,
            args.scale,
            dir.display()
        ));
        return print_manifest(common.format(), &manifest);
    }
    let Some(conn) = &args.into else {
        unreachable!("clap requires --out or --into");
    };
    let params = crate::conninfo::resolve(conn, &|k| std::env::var(k).ok())?;
    let ddl: Ddl = args.schema.parse().map_err(anyhow::Error::msg)?;
    let summary = runtime()?.block_on(source::into::load_into(&params, &ds, ddl))?;
    common.note(&format!("loaded the sample into {}", params.redacted()));
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|(t, n)| vec![t.to_string(), n.to_string()])
        .collect();
    let json: Vec<serde_json::Value> = summary
        .iter()
        .map(|(t, n)| serde_json::json!({"table": t, "rows": n}))
        .collect();
    print_rows(common.format(), &["table", "rows"], &rows, &json)?;
    Ok(())
}

fn cmd_compress(common: &Common, args: &CompressArgs) -> anyhow::Result<()> {
    use crate::compress;
    // Ctrl-C stops between downloaded chunks and between measurements; a partial download is
    // kept as its `.part` file for the next run to resume.
    crate::interrupt::install()?;
    let note = |m: &str| common.note(m);
    let opts = compress::Options {
        inputs: args.input.clone(),
        codecs: compress::parse_list(&args.codecs)?,
        sample: args.sample,
        paths: args
            .paths
            .as_deref()
            .map(compress::httpcache::read_paths)
            .transpose()?,
        http: compress::HttpOptions {
            download_dir: args.download_dir.clone(),
            max_nar_bytes: args.max_nar_mib.saturating_mul(1 << 20),
            timeout: args.timeout,
            progress: Progress::new(common.quiet),
        },
        corpus_cap: args.corpus_mib.saturating_mul(1 << 20),
        spill: compress::Spill {
            in_memory_max: args.in_memory_mib.saturating_mul(1 << 20),
            dir: args
                .spill_dir
                .clone()
                .unwrap_or_else(compress::spool::default_dir),
            max_nar: args.max_nar_mib.saturating_mul(1 << 20),
        },
        ..compress::Options::default()
    };
    // Read the dataset first: a bad source should fail before minutes of compressing.
    let ds = if args.project || args.from_outputs.is_some() {
        let spec = common.source();
        if spec.is_sample() {
            common.note("no --db or --snapshot given: using the built-in sample's builds");
        }
        Some(source::load(&spec, &common.read_options(&[]))?)
    } else {
        None
    };
    let mut opts = opts;
    if let (Some(n), Some(ds)) = (args.from_outputs, &ds) {
        let picks = compress::outputs::pick(ds, n)?;
        let located = compress::outputs::locate(&picks, &args.cache, &opts.http, &note)?;
        if located.found.is_empty() {
            return Err(crate::Error::Invalid(format!(
                "none of the {} output paths picked from {} is in the local store or a --cache \
                 (the first: {})",
                picks.len(),
                ds.meta.origin.describe(),
                located
                    .missing
                    .first()
                    .or(located.too_large.first())
                    .map(String::as_str)
                    .unwrap_or("none")
            ))
            .into());
        }
        let too_large = if located.too_large.is_empty() {
            String::new()
        } else {
            format!(
                ", {} larger than --max-nar-mib {}",
                located.too_large.len(),
                args.max_nar_mib
            )
        };
        common.note(&format!(
            "--from-outputs: measuring {} of {} picked output paths ({} not found locally or in a \
             cache{too_large})",
            located.found.len(),
            picks.len(),
            located.missing.len()
        ));
        let found = located.found;
        opts.extra = found;
    }
    let projection = if let (true, Some(ds)) = (args.project, &ds) {
        let costs = match &args.costs {
            Some(p) => compress::project::read_costs(p)?,
            None => compress::project::Costs::default(),
        };
        Some((compress::project::volume(ds)?, costs))
    } else {
        None
    };
    let report = compress::run(&opts, &note)?;
    if let Some((volume, costs)) = projection {
        let rows_p = compress::project::project(&volume, &report.codecs, &costs);
        common.note(&format!(
            "output volume: {:.1} GB/day over {:.1} days ({} builds), busiest hour {:.2} GB at {} \
             — {}",
            volume.bytes_per_day / 1e9,
            volume.days,
            volume.builds,
            volume.peak_hour_bytes / 1e9,
            crate::window::fmt_time(volume.peak_hour),
            compress::project::VOLUME_BASIS
        ));
        let cur = costs.currency.clone();
        let rows: Vec<Vec<String>> = rows_p
            .iter()
            .map(|p| {
                vec![
                    p.codec.clone(),
                    format!("{:.2}", p.compress_core_hours_per_day),
                    format!("{:.2}", p.peak_hour_cores),
                    format!("{:.3}", p.stored_tib_per_month),
                    format!("{:.0}", p.client_decompress_core_hours_per_month),
                    format!("{:.2} {cur}", p.farm_cost_per_month),
                    format!("{:.2} {cur}", p.client_cost_per_month),
                ]
            })
            .collect();
        let json = serde_json::json!({
            "volume": volume,
            "costs": costs,
            "projections": rows_p,
            "measurements": report,
        });
        print_rows(
            common.format(),
            &[
                "codec",
                "compress core-h/day",
                "peak-hour cores",
                "stored TiB/month",
                "client decompress core-h/month",
                "farm cost/month (estimate)",
                "client cost/month (estimate)",
            ],
            &rows,
            &json,
        )?;
        return Ok(());
    }
    let mut header = vec![
        "codec",
        "nars",
        "MB",
        "ratio %",
        "comp CPU s",
        "comp MB/s/core",
        "comp MB/s wall",
        "decomp MB/s",
        "enc MiB",
        "pareto",
        "outliers",
    ];
    let num = |x: f64, prec: usize| format!("{x:.prec$}");
    let mem = |m: Option<u64>| m.map_or_else(|| "-".into(), |b| (b >> 20).to_string());
    let mut rows: Vec<Vec<String>> = report
        .codecs
        .iter()
        .map(|c| {
            vec![
                c.codec.clone(),
                c.nars.to_string(),
                num(c.nar_bytes as f64 / 1e6, 1),
                num(c.ratio_pct, 2),
                num(c.compress_cpu_s, 2),
                num(c.compress_mb_s_core, 1),
                num(c.compress_mb_s, 1),
                num(c.decompress_mb_s, 0),
                mem(c.encoder_memory_bytes),
                if c.pareto { "*".into() } else { String::new() },
                c.outliers.to_string(),
            ]
        })
        .collect();
    if args.per_nar {
        header.insert(0, "nar");
        header.truncate(header.len() - 2);
        header.push("outlier");
        rows = report
            .measurements
            .iter()
            .map(|m| {
                vec![
                    m.nar.clone(),
                    m.codec.clone(),
                    "1".into(),
                    num(m.nar_bytes as f64 / 1e6, 1),
                    num(m.ratio_pct, 2),
                    num(m.compress_cpu_s, 2),
                    num(m.compress_mb_s_core, 1),
                    num(m.compress_mb_s, 1),
                    num(m.decompress_mb_s, 0),
                    mem(m.encoder_memory_bytes),
                    m.outlier.clone().unwrap_or_default(),
                ]
            })
            .collect();
    }
    print_rows(common.format(), &header, &rows, &report)?;
    Ok(())
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
