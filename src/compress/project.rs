//! Projection: measured codec speeds and ratios turned into the farm's cost per day and month,
//! using the output volume the dataset records (`Builds.size`), and a cost file.
//!
//! Only a build's own outputs have a recorded NAR size; the outputs of its dependency steps are
//! compressed too but their sizes are not stored, so the volume — and every figure below — is a
//! lower bound, and says so.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CodecSummary;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Prices, in one currency. Every default is an estimate from public figures (docs/hydra.md
/// §6), written next to it; a cost file replaces any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Costs {
    pub currency: String,
    /// Price of one core-hour. Default: a Hetzner builder at 255 EUR/month (the NixOS
    /// foundation's 240–270 EUR, 2024) assumed to have 32 cores: 255 / (730 h × 32).
    pub core_hour: f64,
    /// Storage per TiB-month. Default: cache.nixos.org's S3 bill of about $5.5k/month for
    /// 425 TiB (May 2023) = $12.9/TiB-month, at 0.92 EUR/USD.
    pub storage_tib_month: f64,
    /// Egress per TiB served. Default 0: cache.nixos.org's CDN traffic is sponsored.
    pub egress_tib: f64,
    /// Compressed TiB served to clients per month, for their decompression cost. Default:
    /// cache.nixos.org's ~1.5 PiB/month through the CDN.
    pub egress_tib_month: f64,
    /// Price of one builder machine per month, which prices the capacity ledger's slot-hours:
    /// a slot-hour of a machine costs `machine_month / (730 h × its slots)`, so a month of a
    /// machine's slot-hours costs its rent. Default: a Hetzner builder at 255 EUR/month (the
    /// NixOS foundation's 240–270 EUR, 2024).
    pub machine_month: f64,
    /// Per system type (a machine's first system in the machines file, e.g. `aarch64-darwin`),
    /// replacing `machine_month` for those machines. Default: none.
    pub machine_month_by_system: BTreeMap<String, f64>,
}

/// Hours in a month: a year of 8,760 hours over twelve. Every per-month figure uses it.
pub const MONTH_HOURS: f64 = 730.0;

/// A Hetzner builder's rent, EUR/month: the middle of the NixOS foundation's 240–270 EUR (2024).
const BUILDER_MONTH_EUR: f64 = 255.0;

impl Costs {
    /// The monthly price of a machine whose first system type is `system`.
    pub fn machine_month_for(&self, system: &str) -> f64 {
        self.machine_month_by_system
            .get(system)
            .copied()
            .unwrap_or(self.machine_month)
    }
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            currency: "EUR".into(),
            core_hour: BUILDER_MONTH_EUR / (MONTH_HOURS * 32.0),
            storage_tib_month: 5500.0 / 425.0 * 0.92,
            egress_tib: 0.0,
            egress_tib_month: 1536.0,
            machine_month: BUILDER_MONTH_EUR,
            machine_month_by_system: BTreeMap::new(),
        }
    }
}

/// The most read of a cost file: a handful of prices, one per system at most; 1 MiB is
/// thousands of times that.
const COSTS_CAP: u64 = 1 << 20;

/// Reads a cost file (TOML with any of the [`Costs`] fields).
/// The largest value a cost file may give: a billion of its currency per core-hour, TiB-month
/// or machine-month (or a billion TiB served a month) is beyond any farm, so a larger value is
/// a typo; and bounded so, every figure a cost multiplies (hours, cores, TiB) stays finite,
/// where 1e308 made the report print `inf`.
pub const MAX_COST: f64 = 1e9;

pub fn read_costs(path: &Path) -> Result<Costs> {
    let text = crate::readfile::read_capped_string(path, "cost file", COSTS_CAP)?;
    let costs: Costs = toml::from_str(&text)
        .map_err(|e| Error::parse(path.display().to_string(), one_line(&e.to_string())))?;
    let by_system = costs
        .machine_month_by_system
        .iter()
        .map(|(k, v)| (format!("machine_month_by_system.{k}"), *v));
    for (name, v) in [
        ("core_hour".to_string(), costs.core_hour),
        ("storage_tib_month".to_string(), costs.storage_tib_month),
        ("egress_tib".to_string(), costs.egress_tib),
        ("egress_tib_month".to_string(), costs.egress_tib_month),
        ("machine_month".to_string(), costs.machine_month),
    ]
    .into_iter()
    .chain(by_system)
    {
        if !(v.is_finite() && (0.0..=MAX_COST).contains(&v)) {
            // Far from 1 in scientific notation: 1e308 written out is 309 digits.
            let shown = if (1e-3..1e6).contains(&v.abs()) {
                v.to_string()
            } else {
                format!("{v:e}")
            };
            return Err(Error::parse(
                path.display().to_string(),
                format!("`{name}` is {shown}; it must be a number from 0 to {MAX_COST:e}"),
            ));
        }
    }
    Ok(costs)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The farm's output volume over the dataset's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Volume {
    pub basis: &'static str,
    pub builds: usize,
    pub days: f64,
    pub bytes_per_day: f64,
    /// The busiest hour (UTC, unix seconds at its start) and its output bytes.
    pub peak_hour: i64,
    pub peak_hour_bytes: f64,
}

pub const VOLUME_BASIS: &str = "Builds.size (NAR size of each finished, non-cached build's own \
    outputs), by the hour the build stopped; dependency outputs are not recorded, so this is a \
    lower bound";

pub fn volume(ds: &Dataset) -> Result<Volume> {
    let mut v = VolumeSums::default();
    v.add(&ds.builds)?;
    Ok(v.finish(ds.meta.window))
}

/// The sums [`volume`] is made of, taking the builds in parts (a snapshot's files) or at
/// once: whole bytes, which add up exactly in any order.
#[derive(Debug, Clone, Default)]
pub struct VolumeSums {
    per_hour: BTreeMap<i64, f64>,
    total: f64,
    n: usize,
    first: Option<i64>,
    last: Option<i64>,
}

impl VolumeSums {
    /// The builds of `b` (a frame of the builds table).
    pub fn add(&mut self, b: &polars::prelude::DataFrame) -> Result<()> {
        let err = |e| Error::frame("builds", e);
        let size = b.column("size").map_err(err)?.i64().map_err(err)?;
        let stop = b.column("stop_time").map_err(err)?.i64().map_err(err)?;
        let fin = b.column("finished").map_err(err)?.bool().map_err(err)?;
        let cached = b
            .column("is_cached_build")
            .map_err(err)?
            .bool()
            .map_err(err)?;
        for i in 0..b.height() {
            let (Some(s), Some(t), Some(true)) = (size.get(i), stop.get(i), fin.get(i)) else {
                continue;
            };
            if cached.get(i) == Some(true) || s < 0 {
                continue;
            }
            *self.per_hour.entry(t.div_euclid(3600) * 3600).or_default() += s as f64;
            self.total += s as f64;
            self.n += 1;
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        Ok(())
    }

    /// The volume over `window` (else the span of the builds' stops, at least an hour).
    pub fn finish(self, window: crate::window::Window) -> Volume {
        let span_s = match (window.since, window.until, self.first, self.last) {
            (Some(a), Some(b), _, _) if b > a => (b - a) as f64,
            (_, _, Some(lo), Some(hi)) => ((hi - lo) as f64).max(3600.0),
            _ => 0.0,
        };
        let days = span_s / 86_400.0;
        let (peak_hour, peak_hour_bytes) = self
            .per_hour
            .iter()
            .max_by(|(_, a_bytes), (_, b_bytes)| a_bytes.total_cmp(b_bytes))
            .map(|(h, v)| (*h, *v))
            .unwrap_or((0, 0.0));
        Volume {
            basis: VOLUME_BASIS,
            builds: self.n,
            days,
            bytes_per_day: if days > 0.0 { self.total / days } else { 0.0 },
            peak_hour,
            peak_hour_bytes,
        }
    }
}

/// One codec's cost at the farm's volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub codec: String,
    /// CPU to compress a day's output, core-hours.
    pub compress_core_hours_per_day: f64,
    /// Cores busy compressing to keep up with the busiest hour (what the C++ runner's local
    /// worker slots had to deliver).
    pub peak_hour_cores: f64,
    /// Compressed TiB added to the cache per month (30 days).
    pub stored_tib_per_month: f64,
    /// Clients' CPU to decompress the month's egress, core-hours.
    pub client_decompress_core_hours_per_month: f64,
    /// Farm cost per month: compressing + one month of storing a month's new output + egress.
    pub farm_cost_per_month: f64,
    /// Clients' decompression at the same core-hour price (not the farm's bill).
    pub client_cost_per_month: f64,
}

const TIB: f64 = 1_099_511_627_776.0;

pub fn project(v: &Volume, codecs: &[CodecSummary], c: &Costs) -> Vec<Projection> {
    codecs
        .iter()
        .filter(|s| s.compress_mb_s_core > 0.0 && s.decompress_mb_s > 0.0)
        .map(|s| {
            let ratio = s.ratio_pct / 100.0;
            let comp_bps = s.compress_mb_s_core * 1e6;
            let compress_h = v.bytes_per_day / comp_bps / 3600.0;
            let stored = v.bytes_per_day * 30.0 * ratio / TIB;
            // Egress is compressed bytes; clients decompress it back to NAR bytes.
            let nar_served = c.egress_tib_month * TIB / ratio.max(1e-9);
            let client_h = nar_served / (s.decompress_mb_s * 1e6) / 3600.0;
            Projection {
                codec: s.codec.clone(),
                compress_core_hours_per_day: compress_h,
                peak_hour_cores: v.peak_hour_bytes / 3600.0 / comp_bps,
                stored_tib_per_month: stored,
                client_decompress_core_hours_per_month: client_h,
                farm_cost_per_month: compress_h * 30.0 * c.core_hour
                    + stored * c.storage_tib_month
                    + c.egress_tib_month * c.egress_tib,
                client_cost_per_month: client_h * c.core_hour,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_estimates() {
        let c = Costs::default();
        assert!((c.core_hour - 0.010916).abs() < 1e-5);
        assert!((c.storage_tib_month - 11.906).abs() < 1e-2);
    }
}
