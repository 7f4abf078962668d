//! The binary COPY decoder on arbitrary bytes fed in arbitrary chunks: rows or an error, never a
//! panic, and a stream that decodes completely decodes the same whatever the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    use hydra_bottleneck::dataset::STEPS;
    use hydra_bottleneck::source::pgcopy::CopyDecoder;
    let (chunk, data) = input;
    let chunk = usize::from(chunk.max(1));
    let whole = {
        let mut d = CopyDecoder::new(&STEPS, 4);
        d.feed(data).and_then(|_| d.finish())
    };
    let pieces = {
        let mut d = CopyDecoder::new(&STEPS, 4);
        data.chunks(chunk)
            .try_for_each(|c| d.feed(c))
            .and_then(|_| d.finish())
    };
    match (whole, pieces) {
        (Ok(a), Ok(b)) => assert!(a.equals_missing(&b), "chunking changed the rows"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "whole: {:?}, in chunks of {chunk}: {:?}",
            a.map(|d| d.height()),
            b.map(|d| d.height())
        ),
    }
});
