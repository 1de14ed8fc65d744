//! End-to-end tests: the real binaries in real pipelines.

mod codec;
mod docs;
mod etsy;
mod golden;
mod harness;
mod pipeline;
