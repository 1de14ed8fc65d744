//! The statsd protocol: lines from Etsy statsd, Brubeck and DogStatsD clients.

pub mod funnel;
pub mod http;
pub mod parse;
pub mod secure;

pub use parse::{BadLine, Parser, Sanitize};
