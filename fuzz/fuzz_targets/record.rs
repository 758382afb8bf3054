#![no_main]
//! Validation: one verdict per record, in agreement with serde_json.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_event::fuzzing::record(data));
