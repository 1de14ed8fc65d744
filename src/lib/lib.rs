//! tlm: small telemetry commands that compose with Unix pipes.
//!
//! The library holds all behaviour; the binaries in `src/bin` parse flags and wire modules.
//! Every command reads and writes tlm metric v1 (`docs/format.md`): one JSON metric per line.

pub mod agg;
pub mod alloc;
pub mod append;
pub mod cli;
pub mod collect;
pub mod encode;
pub mod error;
pub mod httpd;
pub mod io;
pub mod lineproto;
pub mod log;
pub mod metric;
pub mod ndjson;
pub mod prefetch;
pub mod publish;
pub mod rng;
pub mod runtime;
pub mod schedule;
pub mod signals;
pub mod snmp;
pub mod statsd;
pub mod stream;
pub mod time;

pub use error::{Error, Exit, Result};
pub use metric::{Kind, Metric, Temporality, Value};
