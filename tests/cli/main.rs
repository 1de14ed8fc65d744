//! End-to-end tests: the real binaries in real pipelines.

mod agg_peers;
mod codec;
mod collect_sources;
mod collect_system;
mod docs;
mod etsy;
mod golden;
mod harness;
mod pipeline;
mod publish;
mod publish_peers;
mod sinks;
mod sinks_smoke;
mod snmp;
mod statsd;
mod statsd_input;
mod statsd_listen;
mod statsd_peers;
