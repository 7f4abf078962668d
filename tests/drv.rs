//! The `.drv` parser (`nix::drv`) against the reference: derivations made by the installed Nix
//! (`nix-instantiate`, Debian package nix-bin, installed by .ci/run) from plain `derivation`
//! expressions with dependencies between them, in a throwaway store (`--store local?root=DIR`,
//! so the machine's own store is never touched), each read back and compared with the
//! expression, with `nix show-derivation` and with `nix-store --query --references`, and written
//! back byte for byte. Then properties: derivations generated here, written by a writer of this
//! file that follows Nix's `printString`, parse to what was generated; arbitrary and mutated
//! bytes give a value or an error, never a panic; every proper prefix of a derivation is refused.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hydra_bottleneck::Error;
use hydra_bottleneck::nix::drv::{
    self, Derivation, DrvSummary, Format, MAX_DRV_SIZE, OutputKind, Wanted,
};
use proptest::prelude::*;
use serde_json::Value;

/// Every derivation kind Nix 2.8 writes: plain, multi-output, escapes in arguments and the
/// environment, an input source, fixed outputs (flat and recursive), structured attributes,
/// a content-addressed (floating) output, one deferred behind it, an impure one.
const EXPRESSION: &str = r#"
let
  sys = "x86_64-linux";
  mk = attrs: derivation ({ system = sys; builder = "/bin/sh"; } // attrs);
in rec {
  a = mk { name = "a"; args = [ "-c" "echo \"hi\" > $out" "back\\slash" "tab\there" ]; };
  b = mk {
    name = "b"; system = "aarch64-linux"; outputs = [ "out" "dev" ]; dep = a;
    requiredSystemFeatures = [ "kvm" "big-parallel" ];
    weird = "q\"b\\s\nn\rr\tt ü€ $";
  };
  c = mk { name = "c"; x = b.dev; y = a; src = ./src.txt; };
  fixedRec = mk {
    name = "fixed-rec"; outputHashMode = "recursive"; outputHashAlgo = "sha256";
    outputHash = "0000000000000000000000000000000000000000000000000000";
  };
  fixedFlat = mk {
    name = "fixed-flat"; outputHashAlgo = "sha1";
    outputHash = "0000000000000000000000000000000000000000";
  };
  structured = mk {
    name = "structured"; __structuredAttrs = true;
    requiredSystemFeatures = [ "nixos-test" "kvm" ]; deps = [ fixedRec fixedFlat ];
  };
  floating = mk {
    name = "floating"; __contentAddressed = true; outputHashMode = "recursive";
    outputHashAlgo = "sha256"; x = structured;
  };
  deferred = mk { name = "deferred"; dep = floating; };
  impure = mk { name = "impure"; __impure = true; };
  top = mk { name = "top"; deps = [ c deferred impure b.out ]; };
}
"#;

const NAMES: [&str; 10] = [
    "a",
    "b",
    "c",
    "fixedRec",
    "fixedFlat",
    "structured",
    "floating",
    "deferred",
    "impure",
    "top",
];

/// Features the expressions need beyond Nix 2.8's defaults.
const XP: &str = "nix-command ca-derivations impure-derivations";

fn nix(dir: &Path, tool: &str, args: &[&str]) -> Vec<u8> {
    let out = run(dir, tool, args);
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn try_nix(store: &Store, tool: &str, args: &[&str]) -> Option<Vec<u8>> {
    let out = run(&store.dir, tool, args);
    out.status.success().then_some(out.stdout)
}

fn run(dir: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let store = format!("local?root={}", dir.join("root").display());
    Command::new(tool)
        .args(["--store", &store, "--option", "build-users-group", ""])
        .args(["--extra-experimental-features", XP])
        .args(args)
        .current_dir(dir)
        // Nothing of the user's: no cache or configuration under their home.
        .env("HOME", dir)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap_or_else(|e| panic!("running {tool} (apt-get install nix-bin): {e}"))
}

/// The throwaway store with the expression's derivations, and each one's store path by name.
struct Store {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    /// Where the `.drv` files are on disk (the store directory under the root).
    store_dir: PathBuf,
    paths: BTreeMap<&'static str, String>,
}

fn instantiate() -> Store {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    fs::write(dir.join("src.txt"), "hello\n").unwrap();
    fs::write(dir.join("e.nix"), EXPRESSION).unwrap();
    let mut args = vec!["e.nix"];
    for n in NAMES {
        args.extend(["-A", n]);
    }
    let out = String::from_utf8(nix(&dir, "nix-instantiate", &args)).unwrap();
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), NAMES.len(), "{out}");
    let paths = NAMES
        .iter()
        .zip(&printed)
        .map(|(n, p)| (*n, p.to_string()))
        .collect();
    Store {
        store_dir: dir.join("root/nix/store"),
        dir,
        _dir: tmp,
        paths,
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap()
}

/// What `nix show-derivation` (2.8) or `nix derivation show` (later) says of `path`, in the
/// parser's terms: paths as base names (newer Nix prints base names), absent fields empty.
struct Shown {
    outputs: Vec<(String, String, String, String)>,
    input_drvs: Vec<(String, Vec<String>)>,
    input_srcs: Vec<String>,
    platform: String,
    builder: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn show(store: &Store, path: &str) -> Shown {
    // `nix derivation show` from Nix 2.15 on, `nix show-derivation` before (2.8 here).
    let json = try_nix(store, "nix", &["derivation", "show", path])
        .or_else(|| try_nix(store, "nix", &["show-derivation", path]))
        .expect("neither `nix derivation show` nor `nix show-derivation` worked");
    let v: Value = serde_json::from_slice(&json).unwrap();
    let v = v
        .get("derivations")
        .unwrap_or(&v)
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|x| base(&s(x)).to_string()).collect())
            .unwrap_or_default()
    };
    let outputs = v["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, o)| {
            let hash = if o["impure"].as_bool() == Some(true) {
                "impure".to_string()
            } else {
                s(&o["hash"])
            };
            let path = s(&o["path"]);
            (
                name.clone(),
                base(&path).to_string(),
                s(&o["hashAlgo"]),
                hash,
            )
        })
        .collect();
    let input_drvs = v["inputDrvs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, outs)| {
            let outs = outs.get("outputs").unwrap_or(outs);
            (base(p).to_string(), strings(outs))
        })
        .collect();
    let platform = v.get("system").or(v.get("platform")).map(s).unwrap();
    Shown {
        outputs,
        input_drvs,
        input_srcs: strings(&v["inputSrcs"]),
        platform,
        builder: s(&v["builder"]),
        args: v["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect::<Vec<_>>(),
        env: v["env"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, x)| (k.clone(), s(x)))
            .collect(),
    }
}

/// The summary's content, computed from the full parse.
fn summary_of(d: &Derivation<'_>) -> DrvSummary {
    DrvSummary {
        outputs: d
            .outputs
            .iter()
            .map(|o| (o.name.to_string(), o.path.to_string()))
            .collect(),
        input_drvs: d
            .input_drvs
            .iter()
            .map(|i| {
                (
                    i.path.to_string(),
                    i.outputs_to_build().iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect(),
        platform: d.platform.to_string(),
        required_system_features: d.required_system_features().unwrap(),
    }
}

#[test]
fn derivations_made_by_nix_read_as_nix_reads_them() {
    let store = instantiate();
    let mut parsed: BTreeMap<&str, Derivation<'static>> = BTreeMap::new();
    for (name, path) in &store.paths {
        let bytes = fs::read(store.store_dir.join(base(path))).unwrap();
        let d = drv::parse(&bytes, path).unwrap();
        // Written back byte for byte.
        assert_eq!(drv::unparse(&d).as_bytes(), &bytes[..], "{name}");
        assert_eq!(d.format, Format::Derive);

        // As `nix show-derivation` reads it.
        let shown = show(&store, path);
        let outputs: Vec<_> = d
            .outputs
            .iter()
            .map(|o| {
                (
                    o.name.to_string(),
                    base(&o.path).to_string(),
                    o.hash_algo.to_string(),
                    o.hash.to_string(),
                )
            })
            .collect();
        assert_eq!(outputs, shown.outputs, "{name}");
        let inputs: Vec<_> = d
            .input_drvs
            .iter()
            .map(|i| {
                let outs = i.outputs.iter().map(|o| o.to_string()).collect::<Vec<_>>();
                (base(&i.path).to_string(), outs)
            })
            .collect();
        assert_eq!(inputs, shown.input_drvs, "{name}");
        let srcs: Vec<_> = d.input_srcs.iter().map(|p| base(p).to_string()).collect();
        assert_eq!(srcs, shown.input_srcs, "{name}");
        assert_eq!(d.platform, shown.platform, "{name}");
        assert_eq!(d.builder, shown.builder, "{name}");
        assert_eq!(d.args, shown.args, "{name}");
        let env: BTreeMap<String, String> = d
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, shown.env, "{name}");

        // Its references are its input derivations and sources.
        let refs = String::from_utf8(nix(
            &store.dir,
            "nix-store",
            &["--query", "--references", path],
        ))
        .unwrap();
        let refs: BTreeSet<&str> = refs.lines().collect();
        let ours: BTreeSet<&str> = d
            .input_drvs
            .iter()
            .map(|i| &*i.path)
            .chain(d.input_srcs.iter().map(|p| &**p))
            .collect();
        assert_eq!(ours, refs, "{name}");

        // The summary, and both ways of naming the file.
        let s = drv::summary(&bytes, path).unwrap();
        assert_eq!(s, summary_of(&d), "{name}");
        for naming in [path.as_str(), base(path)] {
            assert_eq!(
                drv::read_drv(&store.store_dir, naming).unwrap().as_ref(),
                Some(&d)
            );
            assert_eq!(
                drv::read_drv_summary(&store.store_dir, naming).unwrap(),
                Some(s.clone())
            );
        }
        parsed.insert(name, d.into_owned());
    }

    // What the expression says.
    let p = |n: &str| store.paths[n].clone();
    let inputs = |n: &str| -> Vec<(String, Vec<String>)> {
        drv::read_drv_summary(&store.store_dir, &p(n))
            .unwrap()
            .unwrap()
            .input_drvs
    };
    let out = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let features = |n: &str| parsed[n].required_system_features().unwrap();

    let a = &parsed["a"];
    assert!(a.input_drvs.is_empty() && a.input_srcs.is_empty());
    assert_eq!(
        a.args,
        ["-c", "echo \"hi\" > $out", "back\\slash", "tab\there"]
    );
    assert_eq!((&*a.platform, &*a.builder), ("x86_64-linux", "/bin/sh"));

    let b = &parsed["b"];
    assert_eq!(b.platform, "aarch64-linux");
    let names: Vec<&str> = b.outputs.iter().map(|o| &*o.name).collect();
    assert_eq!(names, ["dev", "out"]);
    assert!(b.outputs[0].path.ends_with("-b-dev"));
    assert_eq!(inputs("b"), [(p("a"), out(&["out"]))]);
    assert_eq!(b.env_var("weird"), Some("q\"b\\s\nn\rr\tt ü€ $"));
    assert_eq!(features("b"), ["big-parallel", "kvm"]);

    let c = &parsed["c"];
    assert_eq!(
        inputs("c"),
        [(p("a"), out(&["out"])), (p("b"), out(&["dev"]))]
            .into_iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(c.input_srcs.len(), 1);
    assert!(c.input_srcs[0].ends_with("-src.txt"));

    let fixed = &parsed["fixedRec"].outputs[0];
    assert_eq!(fixed.kind(), OutputKind::Fixed);
    assert_eq!(
        (&*fixed.hash_algo, &*fixed.hash),
        ("r:sha256", &*"0".repeat(64))
    );
    let flat = &parsed["fixedFlat"].outputs[0];
    assert_eq!((&*flat.hash_algo, &*flat.hash), ("sha1", &*"0".repeat(40)));

    assert_eq!(features("structured"), ["kvm", "nixos-test"]);
    assert!(
        parsed["structured"]
            .env_var("requiredSystemFeatures")
            .is_none()
    );
    assert_eq!(inputs("structured").len(), 2);

    assert_eq!(parsed["floating"].outputs[0].kind(), OutputKind::Floating);
    assert_eq!(features("floating"), ["ca-derivations"]);
    assert_eq!(inputs("floating"), [(p("structured"), out(&["out"]))]);
    assert_eq!(parsed["deferred"].outputs[0].kind(), OutputKind::Deferred);
    assert_eq!(parsed["impure"].outputs[0].kind(), OutputKind::Impure);
    assert_eq!(features("impure"), ["ca-derivations"]);

    let mut top: Vec<(String, Vec<String>)> = vec![
        (p("b"), out(&["out"])),
        (p("c"), out(&["out"])),
        (p("deferred"), out(&["out"])),
        (p("impure"), out(&["out"])),
    ];
    top.sort();
    assert_eq!(inputs("top"), top);
}

#[test]
fn files_are_read_capped_and_named_safely() {
    let dir = tempfile::tempdir().unwrap();
    let name = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs-x.drv";
    assert_eq!(drv::read_drv(dir.path(), name).unwrap(), None, "absent");
    let f = fs::File::create(dir.path().join(name)).unwrap();
    f.set_len(MAX_DRV_SIZE + 1).unwrap();
    let e = drv::read_drv(dir.path(), name).unwrap_err().to_string();
    assert!(e.contains("larger than 16 MiB"), "{e}");
    fs::remove_file(dir.path().join(name)).unwrap();
    fs::create_dir(dir.path().join(name)).unwrap();
    let e = drv::read_drv_summary(dir.path(), name).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let e = drv::read_drv(dir.path(), "../etc/passwd").unwrap_err();
    assert!(e.to_string().contains("not a store path"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Generated derivations and this file's own writer.

/// NixOS/nix `src/libstore/derivation/aterm.cc`, `printString`, written afresh.
fn quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn list<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> String) -> String {
    let v: Vec<String> = items.into_iter().map(f).collect();
    format!("[{}]", v.join(","))
}

/// A wanted-outputs node: outputs, and the outputs wanted of outputs that are derivations.
#[derive(Debug, Clone)]
struct Node(BTreeSet<String>, BTreeMap<String, Node>);

fn node_text(n: &Node) -> String {
    let outs = list(&n.0, |o| quote(o));
    if n.1.is_empty() {
        outs
    } else {
        let dynamic = list(&n.1, |(k, v)| format!("({},{})", quote(k), node_text(v)));
        format!("({outs},{dynamic})")
    }
}

fn node_value(n: &Node) -> Wanted<'static> {
    Wanted {
        outputs: n.0.iter().map(|s| s.clone().into()).collect(),
        dynamic: n
            .1
            .iter()
            .map(|(k, v)| (k.clone().into(), node_value(v)))
            .collect(),
    }
}

#[derive(Debug, Clone)]
struct Gen {
    outputs: BTreeMap<String, (String, String, String)>,
    input_drvs: BTreeMap<String, Node>,
    input_srcs: BTreeSet<String>,
    platform: String,
    builder: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn gen_text(g: &Gen) -> String {
    let dynamic = g.input_drvs.values().any(|n| !n.1.is_empty());
    let head = if dynamic {
        "DrvWithVersion(\"xp-dyn-drv\","
    } else {
        "Derive("
    };
    format!(
        "{head}{},{},{},{},{},{},{})",
        list(&g.outputs, |(n, (p, a, h))| format!(
            "({},{},{},{})",
            quote(n),
            quote(p),
            quote(a),
            quote(h)
        )),
        list(&g.input_drvs, |(p, n)| format!(
            "({},{})",
            quote(p),
            node_text(n)
        )),
        list(&g.input_srcs, |p| quote(p)),
        quote(&g.platform),
        quote(&g.builder),
        list(&g.args, |a| quote(a)),
        list(&g.env, |(k, v)| format!("({},{})", quote(k), quote(v))),
    )
}

/// Text with every character `printString` escapes, and any other character.
fn text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        Just('"'),
        Just('\\'),
        Just('\n'),
        Just('\r'),
        Just('\t'),
        Just('('),
        Just(','),
        Just('['),
        any::<char>(),
        proptest::char::range('a', 'z'),
    ];
    prop::collection::vec(c, 0..16).prop_map(String::from_iter)
}

fn hash_part() -> impl Strategy<Value = String> {
    "[0-9a-df-np-sv-z]{32}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9+._?=-]{0,12}"
}

fn store_path(suffix: &'static str) -> impl Strategy<Value = String> {
    (hash_part(), name()).prop_map(move |(h, n)| format!("/nix/store/{h}-{n}{suffix}"))
}

fn node(dynamic: bool) -> impl Strategy<Value = Node> {
    let leaf = prop::collection::btree_set(name(), 1..3).prop_map(|o| Node(o, BTreeMap::new()));
    if !dynamic {
        return leaf.boxed();
    }
    leaf.prop_recursive(3, 8, 2, |inner| {
        (
            prop::collection::btree_set(name(), 0..2),
            prop::collection::btree_map(name(), inner, 1..3),
        )
            .prop_map(|(o, d)| Node(o, d))
    })
    .boxed()
}

fn output() -> impl Strategy<Value = (String, String, String)> {
    prop_oneof![
        store_path("").prop_map(|p| (p, String::new(), String::new())),
        Just((String::new(), String::new(), String::new())),
        (store_path(""), "[0-9a-f]{64}").prop_map(|(p, h)| (p, "r:sha256".into(), h)),
        (store_path(""), "[0-9a-f]{40}").prop_map(|(p, h)| (p, "sha1".into(), h)),
        Just((String::new(), "r:sha256".into(), String::new())),
        Just((String::new(), "text:sha256".into(), "impure".into())),
    ]
}

fn derivation() -> impl Strategy<Value = Gen> {
    (
        prop::collection::btree_map(name(), output(), 0..4),
        any::<bool>().prop_flat_map(|dynamic| {
            prop::collection::btree_map(store_path(".drv"), node(dynamic), 0..6)
        }),
        prop::collection::btree_set(store_path(""), 0..4),
        (text(), text()),
        prop::collection::vec(text(), 0..4),
        prop::collection::btree_map(text(), text(), 0..8),
    )
        .prop_map(
            |(outputs, input_drvs, input_srcs, (platform, builder), args, env)| Gen {
                outputs,
                input_drvs,
                input_srcs,
                platform,
                builder,
                args,
                env,
            },
        )
}

/// A real derivation, to mutate.
const REAL: &str = r#"Derive([("dev","/nix/store/jd17ff88z81ps3iy5dhm7rfw719hglpm-b-dev","",""),("out","/nix/store/cj8sdmcdkq6zz376s48ldxmf724hfj43-b","","")],[("/nix/store/514a2hndj1niis9a2xg2xcw7xmy2dsjc-a.drv",["out"])],[],"aarch64-linux","/bin/sh",[],[("builder","/bin/sh"),("dep","/nix/store/4fi804ynz7yakgd652jaq2b546mfgrak-a"),("dev","/nix/store/jd17ff88z81ps3iy5dhm7rfw719hglpm-b-dev"),("name","b"),("out","/nix/store/cj8sdmcdkq6zz376s48ldxmf724hfj43-b"),("outputs","out dev"),("requiredSystemFeatures","kvm big-parallel"),("system","aarch64-linux"),("weird","q\"b\\s\nn\rr\tt")])"#;

/// Parsing `bytes` gives a value or an error; a value reads back from its own text.
fn never_panics(bytes: &[u8]) {
    let full = drv::parse(bytes, "m.drv");
    let sum = drv::summary(bytes, "m.drv");
    match (&full, &sum) {
        (Ok(d), Ok(s)) => {
            assert_eq!(&summary_of(d), s);
            let again = drv::unparse(d);
            assert_eq!(&drv::parse(again.as_bytes(), "again").unwrap(), d);
        }
        // A derivation whose structured attributes are not JSON parses, but has no features.
        (Ok(d), Err(_)) => assert!(d.required_system_features().is_err()),
        (Err(Error::Drv { offset, .. }), Err(_)) => assert!(*offset <= bytes.len() as u64),
        other => panic!("parse and summary disagree: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn generated_derivations_read_back(g in derivation()) {
        let t = gen_text(&g);
        let d = drv::parse(t.as_bytes(), "gen.drv").unwrap();
        prop_assert_eq!(drv::unparse(&d), t.clone());
        prop_assert_eq!(
            d.format,
            if t.starts_with("Derive(") { Format::Derive } else { Format::DynamicDerivations }
        );
        let outputs: BTreeMap<String, (String, String, String)> = d
            .outputs
            .iter()
            .map(|o| (o.name.to_string(), (o.path.to_string(), o.hash_algo.to_string(), o.hash.to_string())))
            .collect();
        prop_assert_eq!(outputs, g.outputs.clone());
        prop_assert_eq!(d.input_drvs.len(), g.input_drvs.len());
        for (i, (p, n)) in d.input_drvs.iter().zip(&g.input_drvs) {
            prop_assert_eq!(&*i.path, p.as_str());
            let w = node_value(n);
            prop_assert_eq!(&i.outputs, &w.outputs);
            prop_assert_eq!(&i.dynamic, &w.dynamic);
        }
        let srcs: BTreeSet<String> = d.input_srcs.iter().map(|s| s.to_string()).collect();
        prop_assert_eq!(srcs, g.input_srcs.clone());
        prop_assert_eq!(&*d.platform, g.platform.as_str());
        prop_assert_eq!(&*d.builder, g.builder.as_str());
        prop_assert_eq!(d.args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), g.args.clone());
        let env: BTreeMap<String, String> =
            d.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(env, g.env.clone());
        never_panics(t.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        never_panics(&bytes);
        let mut with_head = b"Derive(".to_vec();
        with_head.extend(&bytes);
        never_panics(&with_head);
    }

    #[test]
    fn mutated_derivations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let mut b = REAL.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(b.len() + 1);
            match op {
                0 if i < b.len() => b[i] = byte,
                1 => b.insert(i, byte),
                _ if i < b.len() => { b.remove(i); }
                _ => {}
            }
        }
        never_panics(&b);
    }
}

#[test]
fn every_proper_prefix_is_refused_at_or_before_its_end() {
    let d = drv::parse(REAL.as_bytes(), "real").unwrap();
    assert_eq!(drv::unparse(&d), REAL);
    for n in 0..REAL.len() {
        match drv::parse(&REAL.as_bytes()[..n], "cut") {
            Err(Error::Drv { offset, .. }) => assert!(offset <= n as u64, "{n}: {offset}"),
            other => panic!("prefix of {n} bytes: {other:?}"),
        }
    }
}

#[test]
fn the_fuzz_seeds_are_derivations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/drv");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let d = drv::parse(&bytes, &path.display().to_string()).unwrap();
        assert_eq!(
            drv::unparse(&d).as_bytes(),
            &bytes[..],
            "{}",
            path.display()
        );
        never_panics(&bytes);
        n += 1;
    }
    assert!(n >= 10, "{n} seeds");
}
