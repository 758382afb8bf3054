#![no_main]
//! The search syntax: parses, or says where it stopped.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_store::fuzzing::query(data));
