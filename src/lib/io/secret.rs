//! Secrets (passwords, tokens, communities) read from files, so they never appear in `ps`.

use crate::error::{Error, Result};
use std::path::Path;

/// A secret from a file, without the trailing newline an editor adds.
pub fn read_secret(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::no_input(format!("secret file {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}
