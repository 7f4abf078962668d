//! The command-line value parsers on arbitrary text: connection strings (URL and key=value,
//! merged with an empty environment), time bounds, durations and intervals. Each gives a value
//! or an error, and a password never shows in an error or a redacted connection, however it
//! was written (escaped or not).
#![no_main]

use libfuzzer_sys::fuzz_target;

use hydra_bottleneck::{conninfo, status, window};

/// Both ends of every password below: finding either in a message means it shows (a piece of)
/// the password.
const HEAD: &str = "Pw§";
const TAIL: &str = "§wP";

/// `tail_too` is false where the password was written so that its end is indistinguishable
/// from more key=value pairs (unquoted, with a space: `password=a sslmode=b`); its head is
/// still the password's and must never show.
fn check(input: &str, pw: &str, tail_too: bool) {
    let shows = |text: &str| text.contains(HEAD) || (tail_too && text.contains(TAIL));
    // `passfile` names a file to read: the fuzzer could name /dev/zero.
    if conninfo::parse(input).is_ok_and(|m| m.contains_key("passfile")) {
        return;
    }
    match conninfo::resolve(input, &|_| None) {
        Ok(p) => {
            if p.password.as_ref().map(|s| s.expose()) == Some(pw) {
                let shown = format!("{} {p} {p:?}", p.redacted());
                assert!(!shows(&shown), "{shown}");
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("connection string:"), "{msg}");
            assert!(!shows(&msg), "{input:?}: {msg}");
        }
    }
}

fuzz_target!(|input: (&str, &str)| {
    let (pw, rest) = input;
    // The markers must be ours alone.
    if pw.contains('§') || rest.contains('§') {
        return;
    }
    // Nor may the password itself complete one: `…Pw` + TAIL reads as a HEAD.
    if pw.ends_with("Pw") || pw.starts_with("wP") {
        return;
    }
    let full = format!("{HEAD}{pw}{TAIL}");
    let quoted = format!("'{}'", full.replace('\\', "\\\\").replace('\'', "\\'"));
    let bare_is_faithful = !pw.chars().any(char::is_whitespace);
    for (value, faithful) in [(&full, bare_is_faithful), (&quoted, true)] {
        check(&format!("password={value} {rest}"), &full, faithful);
        check(&format!("{rest} password={value}"), &full, faithful);
    }
    check(&format!("postgresql://reader:{full}@{rest}"), &full, true);
    // And `rest` on its own through every parser: no panic.
    if !conninfo::parse(rest).is_ok_and(|m| m.contains_key("passfile")) {
        let _ = conninfo::resolve(rest, &|_| None);
    }
    if let Ok(t) = window::parse_time(rest) {
        let spec = window::WindowSpec {
            since: Some(t),
            until: None,
        };
        for anchor in [0, i64::MIN, i64::MAX] {
            let _ = spec.resolve(anchor);
        }
    }
    let _ = window::parse_duration(rest);
    let _ = status::parse_interval(rest);
});
