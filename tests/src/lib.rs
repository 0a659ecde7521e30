//! Integration tests live in tests/tests/; the chaos suite's library (run by
//! tests/tests/chaos.rs and the `chaos` binary) in [`chaos`].

pub mod chaos;
