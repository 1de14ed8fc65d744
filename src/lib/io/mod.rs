//! Inputs (stdin, files, globs) and the buffered output that every command writes through.

pub mod input;
pub mod mapped;
pub mod output;
pub mod secret;

pub use input::{expand_inputs, Input, Opened, Readiness};
pub use output::Output;
pub use secret::read_secret;
