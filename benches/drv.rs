//! `.drv` parsing (`cargo bench --bench drv`): derivations shaped like nixpkgs' stdenv ones,
//! generated here (deterministic; 5–50 input derivations, one to three outputs, a
//! stdenv-like environment with a multi-line script full of escapes), parsed in full, parsed
//! for the summary only, and read from files for the summary. Throughput is derivations.
//! Issue 16's target: at least 50,000 per second on one core. The derivations Nix makes from
//! plain `derivation` expressions (tests/drv.rs) are a few hundred bytes, far smaller than real
//! ones, so they are not what is measured here.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::nix::drv::{self, Derivation, DrvOutput, Format, InputDrv, Str};

/// How many derivations one iteration parses.
const N: usize = 2000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hash(&mut self) -> String {
        const NIX32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
        (0..32)
            .map(|_| char::from(NIX32[self.below(32) as usize]))
            .collect()
    }

    fn name(&mut self) -> String {
        const PARTS: [&str; 12] = [
            "glibc",
            "zlib",
            "openssl",
            "python3",
            "perl",
            "gettext",
            "libffi",
            "ncurses",
            "pkg-config",
            "autoconf",
            "libxml2",
            "curl",
        ];
        format!(
            "{}-{}.{}.{}",
            PARTS[self.below(12) as usize],
            self.below(10),
            self.below(40),
            self.below(10)
        )
    }
}

fn s(v: String) -> Str<'static> {
    Cow::Owned(v)
}

/// One derivation as nixpkgs' stdenv.mkDerivation would write it.
fn stdenv_like(rng: &mut Rng) -> String {
    let store = "/nix/store";
    let pname = rng.name();
    let outs: &[&str] = match rng.below(3) {
        0 => &["out"],
        1 => &["dev", "out"],
        _ => &["bin", "dev", "out"],
    };
    let out_paths: BTreeMap<&str, String> = outs
        .iter()
        .map(|o| {
            let suffix = if *o == "out" {
                String::new()
            } else {
                format!("-{o}")
            };
            (*o, format!("{store}/{}-{pname}{suffix}", rng.hash()))
        })
        .collect();
    let n_inputs = 5 + rng.below(46) as usize;
    let mut inputs: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut input_outputs = Vec::new();
    while inputs.len() < n_inputs {
        let name = rng.name();
        let wanted: Vec<&str> = match rng.below(4) {
            0 => vec!["dev", "out"],
            1 => vec!["bin"],
            _ => vec!["out"],
        };
        for w in &wanted {
            input_outputs.push(format!("{store}/{}-{name}-{w}", rng.hash()));
        }
        inputs.insert(format!("{store}/{}-{name}.drv", rng.hash()), wanted);
    }
    let srcs: BTreeSet<String> = ["default-builder.sh", "source-stdenv.sh", "fix.patch"]
        .iter()
        .map(|n| format!("{store}/{}-{n}", rng.hash()))
        .collect();
    let bash = format!("{store}/{}-bash-5.2p37/bin/bash", rng.hash());
    let split = input_outputs.len() / 2;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("__structuredAttrs", ""),
        ("builder", &bash),
        ("cmakeFlags", ""),
        (
            "configureFlags",
            "--enable-shared --disable-static --with-pic",
        ),
        ("depsBuildBuild", ""),
        ("depsBuildBuildPropagated", ""),
        ("depsBuildTarget", ""),
        ("depsBuildTargetPropagated", ""),
        ("depsHostHost", ""),
        ("depsHostHostPropagated", ""),
        ("depsTargetTarget", ""),
        ("depsTargetTargetPropagated", ""),
        ("doCheck", "1"),
        ("doInstallCheck", ""),
        ("enableParallelBuilding", "1"),
        ("mesonFlags", ""),
        ("outputs", &outs.join(" ")),
        ("patches", srcs.iter().next().unwrap()),
        ("pname", &pname),
        ("strictDeps", "1"),
        ("system", "x86_64-linux"),
        ("version", "1.2.3"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("name".into(), format!("{pname}-1.2.3"));
    env.insert("buildInputs".into(), input_outputs[..split].join(" "));
    env.insert("nativeBuildInputs".into(), input_outputs[split..].join(" "));
    env.insert("propagatedBuildInputs".into(), String::new());
    env.insert(
        "src".into(),
        format!("{store}/{}-source.tar.gz", rng.hash()),
    );
    env.insert(
        "stdenv".into(),
        format!("{store}/{}-stdenv-linux", rng.hash()),
    );
    let lines = 2 + rng.below(12);
    let script: String = (0..lines)
        .map(|i| format!("  substituteInPlace \"$out/lib/f{i}.pc\" --replace '\\t' \"${{dev}}\"\n"))
        .collect();
    env.insert("postInstall".into(), script);
    for (o, p) in &out_paths {
        env.insert(o.to_string(), p.clone());
    }
    let d = Derivation {
        format: Format::Derive,
        outputs: out_paths
            .iter()
            .map(|(o, p)| DrvOutput {
                name: s(o.to_string()),
                path: s(p.clone()),
                hash_algo: s(String::new()),
                hash: s(String::new()),
            })
            .collect(),
        input_drvs: inputs
            .into_iter()
            .map(|(p, w)| InputDrv {
                path: s(p),
                outputs: w.into_iter().map(|o| s(o.to_string())).collect(),
                dynamic: Vec::new(),
            })
            .collect(),
        input_srcs: srcs.into_iter().map(s).collect(),
        platform: s("x86_64-linux".into()),
        builder: s(bash),
        args: ["-e", "source-stdenv.sh", "default-builder.sh"]
            .iter()
            .map(|a| s(a.to_string()))
            .collect(),
        env: env.into_iter().map(|(k, v)| (s(k), s(v))).collect(),
    };
    drv::unparse(&d)
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let drvs: Vec<String> = (0..N).map(|_| stdenv_like(&mut rng)).collect();
    let bytes: usize = drvs.iter().map(String::len).sum();
    let (min, max) = drvs.iter().fold((usize::MAX, 0), |(a, b), d| {
        (a.min(d.len()), b.max(d.len()))
    });
    eprintln!(
        "{N} derivations, {} bytes on average ({min} to {max})",
        bytes / N
    );
    // Every one parses and reads back (the bench measures valid input).
    for d in &drvs {
        assert_eq!(&drv::unparse(&drv::parse(d.as_bytes(), "b").unwrap()), d);
    }

    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for d in &drvs {
        let name = format!("{}-x.drv", rng.hash());
        std::fs::write(dir.path().join(&name), d).unwrap();
        names.push(name);
    }

    let mut g = c.benchmark_group("drv");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            drvs.iter()
                .map(|d| drv::parse(d.as_bytes(), "b").unwrap().input_drvs.len())
                .sum::<usize>()
        })
    });
    g.bench_function("summary", |b| {
        b.iter(|| {
            drvs.iter()
                .map(|d| drv::summary(d.as_bytes(), "b").unwrap().input_drvs.len())
                .sum::<usize>()
        })
    });
    g.bench_function("read_summary", |b| {
        b.iter(|| {
            names
                .iter()
                .map(|n| {
                    drv::read_drv_summary(dir.path(), n)
                        .unwrap()
                        .unwrap()
                        .input_drvs
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
