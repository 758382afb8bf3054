#![no_main]
//! The `_bulk` body: answered item by item or refused whole.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_ingest::fuzzing::bulk(data));
