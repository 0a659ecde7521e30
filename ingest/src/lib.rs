//! The ingest stage (being written).
