//! The NDJSON codec for tlm metric v1: a line splitter, a decoder and an encoder.

pub mod decode;
pub mod encode;
pub mod lines;
pub mod scan;
pub mod shape;

pub use decode::{DecodeError, Decoder};
pub use encode::encode;
pub use lines::{LineBuf, LineError, LineReader};
