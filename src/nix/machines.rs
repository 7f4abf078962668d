//! The build machines file (`/etc/nix/machines`, Hydra's `build_machines`; NixOS/nix
//! `src/libstore/machines.cc` `parseBuilderLine`, docs/hydra.md §4): one builder a line,
//! `URI systems sshKey maxJobs speedFactor supportedFeatures mandatoryFeatures publicHostKey`,
//! whitespace-separated, `-` for an empty field, lists comma-separated, `#` starting a comment.
//!
//! Only the fields the analysis uses are kept (the host key is not). Parsing follows Nix and
//! Hydra: missing trailing fields take their defaults (1 job, speed factor 1), and a mandatory
//! feature is also a supported one, since a machine that demands a feature can build it.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// One line of a machines file: a builder as configured (not as the queue runner last saw it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildMachine {
    /// The store URI as written (`ssh://build@b1`, `b1`, `localhost`).
    pub uri: String,
    /// System types it builds (`x86_64-linux`); empty when the field was `-` or missing.
    pub systems: Vec<String>,
    pub ssh_key: Option<String>,
    pub max_jobs: u32,
    pub speed_factor: f64,
    /// Includes the mandatory features.
    pub supported_features: Vec<String>,
    pub mandatory_features: Vec<String>,
}

impl BuildMachine {
    /// The host part of the URI, without scheme, user or port: what the Rust queue runner calls
    /// a machine (its builders report a hostname), and a fallback to match the C++ runner's names.
    pub fn host(&self) -> &str {
        host_of(&self.uri)
    }
}

/// The host of a store URI or `user@host` name: `ssh://build@b1.example:22` → `b1.example`.
pub fn host_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    // An IPv6 literal keeps its colons; otherwise a colon starts the port.
    if let Some(inner) = rest.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    rest.split(':').next().unwrap_or(rest)
}

/// Parses the text of a machines file; errors name the line.
pub fn parse(text: &str) -> Result<Vec<BuildMachine>> {
    parse_named(text, "machines file")
}

/// The most read of a machines file: a line per machine is about a hundred bytes, so 16 MiB
/// is well over a hundred thousand machines, a hundred times the largest farms.
pub const MACHINES_FILE_CAP: u64 = 16 << 20;

/// Reads and parses a machines file; errors name the file and the line.
pub fn read(path: &Path) -> Result<Vec<BuildMachine>> {
    let text = crate::readfile::read_capped_string(path, "machines file", MACHINES_FILE_CAP)?;
    parse_named(&text, &path.display().to_string())
}

fn parse_named(text: &str, name: &str) -> Result<Vec<BuildMachine>> {
    let mut machines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| Error::parse(format!("{name}, line {}", i + 1), reason);
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 8 {
            return Err(bad(format!(
                "{} fields, at most 8 expected (URI systems sshKey maxJobs speedFactor \
                 supportedFeatures mandatoryFeatures publicHostKey)",
                fields.len()
            )));
        }
        let field = |n: usize| {
            fields
                .get(n)
                .copied()
                .filter(|f| *f != "-" && !f.is_empty())
        };
        let list = |n: usize| -> Vec<String> {
            field(n)
                .map(|f| {
                    f.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let uri = fields[0].to_string();
        let max_jobs = match field(3) {
            None => 1,
            Some(s) => s.parse::<u32>().map_err(|_| {
                bad(format!(
                    "maxJobs `{s}` of {uri} is not a whole number of jobs"
                ))
            })?,
        };
        let speed_factor = match field(4) {
            None => 1.0,
            Some(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => v,
                _ => {
                    return Err(bad(format!(
                        "speedFactor `{s}` of {uri} is not a positive number"
                    )));
                }
            },
        };
        let mandatory_features = list(6);
        let mut supported_features = list(5);
        for f in &mandatory_features {
            if !supported_features.contains(f) {
                supported_features.push(f.clone());
            }
        }
        machines.push(BuildMachine {
            uri,
            systems: list(1),
            ssh_key: field(2).map(str::to_string),
            max_jobs,
            speed_factor,
            supported_features,
            mandatory_features,
        });
    }
    Ok(machines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_lines() {
        let m = parse(
            "# the farm\n\
             ssh://build@b1 x86_64-linux,i686-linux /key 32 2 kvm,nixos-test,big-parallel - -\n\
             \n\
             b2 aarch64-linux - 8 1 - benchmark   # a comment\n\
             localhost\n",
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].uri, "ssh://build@b1");
        assert_eq!(m[0].systems, ["x86_64-linux", "i686-linux"]);
        assert_eq!(m[0].ssh_key.as_deref(), Some("/key"));
        assert_eq!((m[0].max_jobs, m[0].speed_factor), (32, 2.0));
        assert_eq!(m[0].supported_features.len(), 3);
        assert!(m[0].mandatory_features.is_empty());
        assert_eq!(m[1].supported_features, ["benchmark"]);
        assert_eq!(m[1].mandatory_features, ["benchmark"]);
        assert_eq!(m[1].ssh_key, None);
        assert_eq!((m[2].max_jobs, m[2].speed_factor), (1, 1.0));
        assert!(m[2].systems.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("b1 x86_64-linux - 4\nb2 x86_64-linux - four\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "machines file, line 2: maxJobs `four` of b2 is not a whole number of jobs"
        );
        let e = parse("b1 x - 1 0").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("speedFactor"), "{e}");
        let e = parse("a b c d e f g h i").unwrap_err().to_string();
        assert!(e.contains("9 fields"), "{e}");
    }

    #[test]
    fn hosts_of_uris() {
        assert_eq!(host_of("ssh://build@b1.example.org"), "b1.example.org");
        assert_eq!(host_of("ssh-ng://b1:2222"), "b1");
        assert_eq!(host_of("root@b2"), "b2");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("ssh://[2a01::1]:22"), "2a01::1");
    }
}
