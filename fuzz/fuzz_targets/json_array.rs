#![no_main]
//! JSON array splitting: the same elements whole and in chunks, and serde_json's elements.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (chunk, body) = data.split_last().map_or((1, data), |(c, b)| (usize::from(*c) + 1, b));
    sluice_ingest::fuzzing::array(body, chunk);
});
