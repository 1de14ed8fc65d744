//! Collectors behind `tlm-collect`: read a source, turn it into tlm metrics.
//!
//! Sources are nouns (`system`, later `disk`, `net`, ...). Each source appends the metrics of
//! one collection to a caller-owned `Vec<Metric>`, so the caller decides when and how to write
//! them and can reuse the vector from one interval to the next.

pub mod system;
