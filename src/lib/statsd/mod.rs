//! The statsd protocol: lines from Etsy statsd, Brubeck and DogStatsD clients.

pub mod api;
pub mod cache;
pub mod fold;
pub mod funnel;
pub mod http;
pub mod listen;
pub mod parse;
pub mod secure;
pub mod server;
pub mod source;

pub use parse::{BadLine, Parser, Sanitize};
