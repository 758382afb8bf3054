#![no_main]
//! NDJSON splitting: the same records whole and in chunks (the last byte picks the chunk size).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (chunk, body) = data.split_last().map_or((1, data), |(c, b)| (usize::from(*c) + 1, b));
    sluice_ingest::fuzzing::ndjson(body, chunk);
});
