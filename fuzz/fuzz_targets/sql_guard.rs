//! The `query sql` statement check on arbitrary text: never a panic, and never an accepted
//! statement that an independent second look finds outside the allowed kinds (a query, or
//! EXPLAIN of one, with no refused function, locking clause or SELECT … INTO).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use hydra_bottleneck::query::guard;
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    if guard::check(sql).is_ok()
        && let Err(why) = guard::accepted_is_a_query(sql)
    {
        panic!("accepted `{sql}`, but {why}");
    }
});
