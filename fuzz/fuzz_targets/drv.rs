//! The `.drv` parser on arbitrary bytes: a derivation or an `Error::Drv` whose offset lies in
//! the input, never a panic; the full parse and the summary agree; a derivation parsed reads
//! back unchanged from the text `unparse` writes of it.
#![no_main]

use hydra_bottleneck::Error;
use hydra_bottleneck::nix::drv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = drv::parse(data, "fuzz.drv");
    let summary = drv::summary(data, "fuzz.drv");
    match (&full, &summary) {
        (Ok(d), Ok(s)) => {
            assert_eq!(s.platform, d.platform, "the summary's platform");
            assert_eq!(s.outputs.len(), d.outputs.len(), "the summary's outputs");
            assert_eq!(s.input_drvs.len(), d.input_drvs.len(), "the summary's inputs");
            assert_eq!(
                Some(&s.required_system_features),
                d.required_system_features().ok().as_ref()
            );
            let text = drv::unparse(d);
            let again = drv::parse(text.as_bytes(), "unparsed").expect("unparse reads back");
            assert_eq!(&again, d, "unparse changed the derivation");
        }
        // Structured attributes that are not JSON: the derivation parses, its features do not.
        (Ok(d), Err(_)) => assert!(d.required_system_features().is_err()),
        (Err(Error::Drv { offset, .. }), Err(Error::Drv { offset: o2, .. })) => {
            assert!(*offset <= data.len() as u64, "the offset lies inside the input");
            assert_eq!(offset, o2, "both refuse at the same byte");
        }
        (a, b) => panic!("parse: {a:?}, summary: {b:?}"),
    }
});
