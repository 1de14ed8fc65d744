//! tlm-statsd: a statsd server that flushes tlm metrics.

use std::process::ExitCode;
use tlm::cli::statsd::StatsdArgs;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: StatsdArgs) -> tlm::Result<()> {
    tlm::statsd::server::run(args.config()?)
}
