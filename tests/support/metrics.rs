//! A `/metrics` body of the Rust queue runner at any size, for the loopback tests and the
//! benchmark: every family NixOS/hydra registers in
//! `subprojects/hydra-queue-runner/src/state/metrics.rs` (`PromMetrics::new`, 14332fbf), 96 of
//! them, plus the `process_*` ones of the prometheus crate's process collector, in the form its
//! `TextEncoder` writes (families by name, HELP then TYPE, `le` last). Values follow simple
//! formulas of the machine, type and jobset index, so that a test can compute what a reader must
//! find; [`Farm::body`] takes a `tick` that moves the counters, for a watch of several samples.

#![allow(dead_code)] // the tests and the benchmark each use a part

use std::fmt::Write as _;

/// The systems a farm's machine types are drawn from, in order.
const SYSTEMS: [&str; 10] = [
    "x86_64-linux",
    "aarch64-linux",
    "i686-linux",
    "x86_64-darwin",
    "aarch64-darwin",
    "riscv64-linux",
    "armv7l-linux",
    "powerpc64le-linux",
    "armv6l-linux",
    "mips64el-linux",
];

/// The shape of a farm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Farm {
    pub(crate) machines: usize,
    /// At most 10.
    pub(crate) types: usize,
    pub(crate) jobsets: usize,
}

impl Farm {
    /// hydra.nixos.org's size, roughly: 40 builders, 10 systems, 800 jobsets in the queue.
    pub(crate) const LARGE: Farm = Farm {
        machines: 40,
        types: 10,
        jobsets: 800,
    };

    pub(crate) fn machine(i: usize) -> String {
        format!("builder-{i:02}")
    }

    pub(crate) fn system(j: usize) -> &'static str {
        SYSTEMS[j % SYSTEMS.len()]
    }

    /// Machine `i`'s system: machines are spread over the types in turn.
    pub(crate) fn system_of(&self, i: usize) -> &'static str {
        Farm::system(i % self.types.max(1))
    }

    /// Machine `i`'s current jobs (of 8 slots).
    pub(crate) fn current_jobs(i: usize) -> u64 {
        (i % 9) as u64
    }

    /// Type `j`'s steps running, and runnable but not running.
    pub(crate) fn running(j: usize) -> u64 {
        j as u64 + 1
    }

    pub(crate) fn waiting(j: usize) -> u64 {
        5 * j as u64
    }

    /// Steps finished by machine `i` after `tick` samples.
    pub(crate) fn steps_done(i: usize, tick: u64) -> u64 {
        1000 + i as u64 + 10 * tick
    }

    /// A machines file for the farm: each machine builds its system with 8 slots.
    pub(crate) fn machines_file(&self) -> String {
        (0..self.machines)
            .map(|i| format!("ssh://{} {} - 8 1\n", Farm::machine(i), self.system_of(i)))
            .collect()
    }

    /// The body at sample `tick` (counters grow with it, gauges do not).
    pub(crate) fn body(&self, tick: u64) -> String {
        let mut families: Vec<(String, &'static str, Vec<String>)> = Vec::new();
        let p = "hydraqueuerunner_";
        let mut one = |name: &str, kind: &'static str, v: String| {
            families.push((format!("{p}{name}"), kind, vec![format!(" {v}")]));
        };
        let steps_total: u64 = (0..self.machines).map(|i| Farm::steps_done(i, tick)).sum();
        for (name, kind, v) in [
            ("queue_checks_started_total", "counter", 400 + tick),
            ("queue_build_loads_total", "counter", 1200 + tick),
            ("queue_steps_created_total", "counter", 5600 + tick),
            ("queue_checks_early_exits_total", "counter", 3),
            ("queue_checks_finished_total", "counter", 399 + tick),
            ("dispatcher_time_spent_running_total", "counter", 45_000_000),
            (
                "dispatcher_time_spent_waiting_total",
                "counter",
                7_155_000_000,
            ),
            ("monitor_time_spent_running_total", "counter", 900_000_000),
            ("monitor_time_spent_waiting_total", "counter", 6_300_000_000),
            ("builds_read", "counter", 1210 + tick),
            ("builds_read_time_ms", "counter", 6050),
            ("builds_unfinished", "gauge", 1200),
            ("builds_finished", "counter", 800 + tick),
            ("builds_succeeded", "counter", 760 + tick),
            ("builds_failed", "counter", 40),
            ("steps_started", "counter", steps_total + 10),
            ("steps_finished", "counter", steps_total),
            ("steps_building", "gauge", 10),
            ("steps_waiting", "gauge", 30),
            ("steps_runnable", "gauge", 42),
            ("steps_unfinished", "gauge", 5400),
            ("steps_unsupported", "gauge", 1),
            ("steps_unsupported_aborted", "counter", 0),
            ("substitutes_started", "counter", 120),
            ("substitutes_failed", "counter", 2),
            ("substitutes_succeeded", "counter", 118),
            ("steps_retries", "counter", 4),
            ("steps_max_retries", "gauge", 2),
            ("steps_copying_to", "gauge", 3),
            ("steps_copying_from", "gauge", 1),
            ("steps_avg_total_time_ms", "gauge", 120_000),
            ("steps_avg_import_time_ms", "gauge", 6000),
            ("steps_avg_build_time_ms", "gauge", 96_000),
            ("steps_avg_upload_time_ms", "gauge", 9000),
            ("steps_total_time_ms", "counter", 120_000 * steps_total),
            ("steps_total_import_time_ms", "counter", 6000 * steps_total),
            ("steps_total_build_time_ms", "counter", 96_000 * steps_total),
            ("steps_total_upload_time_ms", "counter", 9000 * steps_total),
            ("monitor_checks", "counter", 55 + tick),
            ("dispatch_wakeup", "counter", 900 + tick),
            ("dispatch_time_ms", "counter", 45_000),
            ("machines_total", "gauge", self.machines as u64),
            ("machines_in_use", "gauge", self.machines as u64),
            ("s3_uploads_pending", "gauge", 7),
            ("overflow_copies_queued_total", "counter", 0),
            ("overflow_copies_succeeded_total", "counter", 0),
            ("overflow_copies_failed_total", "counter", 0),
            ("store_nar_info_read", "gauge", 5000),
            ("store_nar_info_read_averted", "gauge", 100),
            ("store_nar_info_missing", "gauge", 250),
            ("store_nar_info_write", "gauge", 2900),
            ("store_path_info_cache_size", "gauge", 65_536),
            ("store_nar_read", "gauge", 10),
            ("store_nar_read_bytes", "gauge", 10_485_760),
            ("store_nar_read_compressed_bytes", "gauge", 2_097_152),
            ("store_nar_write", "gauge", 2900),
            ("store_nar_write_averted", "gauge", 12),
            ("store_nar_write_bytes", "gauge", 3_145_728_000),
            ("store_nar_write_compressed_bytes", "gauge", 786_432_000),
            ("store_nar_write_compression_time_ms", "gauge", 600_000),
            ("sort_duration_ms_total", "counter", 1234),
            ("aborted_jobs_total", "counter", 6),
            ("current_time_seconds", "gauge", 1_780_315_200 + 30 * tick),
            ("uptime_seconds", "gauge", 7200 + 30 * tick),
        ] {
            one(name, kind, v.to_string());
        }
        one("store_nar_compression_savings", "gauge", "0.75".into());
        one("store_nar_compression_speed", "gauge", "5.5".into());

        let mut labelled = |name: &str, kind: &'static str, lines: Vec<String>| {
            families.push((format!("{p}{name}"), kind, lines));
        };
        let types: Vec<usize> = (0..self.types).collect();
        type PerType<'a> = (&'a str, &'a dyn Fn(usize) -> u64);
        let per_type: [PerType; 6] = [
            ("runnable", &|j| Farm::running(j) + Farm::waiting(j)),
            ("running", &Farm::running),
            ("waiting", &Farm::waiting),
            ("disabled", &|j| (j % 2) as u64),
            ("avg_runnable_time", &|_| 0),
            ("wait_time", &|j| 60_000 * j as u64),
        ];
        for (field, value) in per_type {
            labelled(
                &format!("machine_type_{field}"),
                "gauge",
                types
                    .iter()
                    .map(|&j| format!("{{machine_type=\"{}\"}} {}", Farm::system(j), value(j)))
                    .collect(),
            );
        }
        let machines: Vec<usize> = (0..self.machines).collect();
        type PerMachine<'a> = (&'a str, &'a dyn Fn(usize, u64) -> u64);
        let per_machine: [PerMachine; 9] = [
            ("current_jobs", &|i, _| Farm::current_jobs(i)),
            ("steps_done", &Farm::steps_done),
            ("total_step_time_ms", &|i, t| {
                120_000 * Farm::steps_done(i, t)
            }),
            ("total_step_import_time_ms", &|i, t| {
                6000 * Farm::steps_done(i, t)
            }),
            ("total_step_build_time_ms", &|i, t| {
                90_000 * Farm::steps_done(i, t)
            }),
            ("total_step_upload_time_ms", &|i, t| {
                9000 * Farm::steps_done(i, t)
            }),
            ("consecutive_failures", &|i, _| (i % 5 == 4) as u64),
            ("last_ping_timestamp", &|_, t| 1_780_315_197 + 30 * t),
            ("idle_since_timestamp", &|i, _| {
                if Farm::current_jobs(i) == 0 {
                    1_780_315_000
                } else {
                    0
                }
            }),
        ];
        for (field, value) in per_machine {
            labelled(
                &format!("machine_{field}"),
                "gauge",
                machines
                    .iter()
                    .map(|&i| format!("{{hostname=\"{}\"}} {}", Farm::machine(i), value(i, tick)))
                    .collect(),
            );
        }
        for (field, v) in [
            ("put", "1000"),
            ("put_bytes", "2147483648"),
            ("put_time_ms", "512000"),
            ("put_speed", "4"),
            ("get", "0"),
            ("get_bytes", "0"),
            ("get_time_ms", "0"),
            ("get_speed", "NaN"),
            ("head", "500"),
            ("cost_dollar_approx", "0.0052"),
        ] {
            labelled(
                &format!("s3_{field}"),
                "gauge",
                vec![format!("{{remote_store=\"nix-cache\"}} {v}")],
            );
        }
        let jobsets: Vec<String> = (0..self.jobsets)
            .map(|k| format!("project-{:03}:jobset-{k}", k % 97))
            .collect();
        labelled(
            "jobset_share_used",
            "gauge",
            jobsets
                .iter()
                .map(|j| format!("{{jobset_name=\"{j}\"}} 100"))
                .collect(),
        );
        labelled(
            "jobset_seconds",
            "gauge",
            jobsets
                .iter()
                .enumerate()
                .map(|(k, j)| format!("{{jobset_name=\"{j}\"}} {}", 3600 * k))
                .collect(),
        );
        for (name, bounds) in [
            (
                "build_input_drvs_seconds",
                &["0", "1", "5", "10", "25", "50", "100", "250", "500"][..],
            ),
            (
                "build_closure_size_bytes",
                &[
                    "1000",
                    "10000",
                    "100000",
                    "1000000",
                    "10000000",
                    "100000000",
                    "1000000000",
                ][..],
            ),
            (
                "job_wait_time_seconds",
                &["1", "10", "60", "300", "900", "3600", "7200", "86400"][..],
            ),
        ] {
            let mut lines = Vec::new();
            for &j in &types {
                let t = Farm::system(j);
                let total = 100 + 10 * j as u64 + tick;
                for (b, le) in bounds.iter().enumerate() {
                    let count = total * (b as u64 + 1) / (bounds.len() as u64 + 1);
                    lines.push(format!(
                        "_bucket{{machine_type=\"{t}\",le=\"{le}\"}} {count}"
                    ));
                }
                lines.push(format!(
                    "_bucket{{machine_type=\"{t}\",le=\"+Inf\"}} {total}"
                ));
                lines.push(format!("_sum{{machine_type=\"{t}\"}} {}.5", 7 * total));
                lines.push(format!("_count{{machine_type=\"{t}\"}} {total}"));
            }
            families.push((format!("{p}{name}"), "histogram", lines));
        }
        for (name, kind, v) in [
            ("process_cpu_seconds_total", "counter", "812.5"),
            ("process_max_fds", "gauge", "524288"),
            ("process_open_fds", "gauge", "210"),
            ("process_resident_memory_bytes", "gauge", "1342177280"),
            ("process_start_time_seconds", "gauge", "1780308000"),
            ("process_threads", "gauge", "34"),
            ("process_virtual_memory_bytes", "gauge", "4294967296"),
        ] {
            families.push((name.to_string(), kind, vec![format!(" {v}")]));
        }

        families.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (name, kind, lines) in &families {
            let _ = writeln!(out, "# HELP {name} (generated)");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for l in lines {
                out.push_str(name);
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}
