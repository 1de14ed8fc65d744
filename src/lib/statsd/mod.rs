//! The statsd protocol: lines from Etsy statsd, Brubeck and DogStatsD clients.

pub mod parse;

pub use parse::{BadLine, Parser, Sanitize};
