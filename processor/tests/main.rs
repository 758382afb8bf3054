//! The processor's integration tests, in one binary: the loop against the real embedded queue
//! and store (`processor`), ingest and the stores agreeing on what a valid record is
//! (`agreement`), and scoring on demand (`detect`).

mod agreement;
mod detect;
mod processor;
