//! Conformance vectors (placeholder; being written).
