//! `anchord`: parse the command line, set up logging, hand over to a stage.
fn main() {}
