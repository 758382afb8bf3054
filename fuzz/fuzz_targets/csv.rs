#![no_main]
//! CSV uploads: every row becomes a JSON object or a numbered error.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_ingest::fuzzing::csv(data));
