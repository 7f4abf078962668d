//! The NAR reader on arbitrary bytes: a summary or an `Error::Nar`, never a panic, a hang or an
//! allocation sized by the input's length prefixes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match hydra_bottleneck::nar::validate(data) {
        Ok(s) => assert_eq!(
            s.nar_size,
            data.len() as u64,
            "a valid NAR is all of its input"
        ),
        Err(hydra_bottleneck::Error::Nar { offset, .. }) => {
            assert!(
                offset <= data.len() as u64,
                "the offset lies inside the input"
            )
        }
        Err(e) => panic!("a NAR in memory failed with a non-NAR error: {e}"),
    }
});
