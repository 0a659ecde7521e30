//! The load generator (being written).

use crate::{IngestConfig, IngestError};

#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {}

pub async fn run(_config: &IngestConfig, _args: LoadgenArgs) -> Result<(), IngestError> {
    Ok(())
}
