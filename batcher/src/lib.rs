//! The batcher stage (being written).
