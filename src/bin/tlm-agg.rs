//! tlm-agg: windowed aggregation of tlm metrics.

use std::process::ExitCode;
use std::time::Duration;
use tlm::agg::Aggregator;
use tlm::cli::agg::AggArgs;
use tlm::io::{expand_inputs, Output};

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: AggArgs) -> tlm::Result<()> {
    tlm::alloc::single_arena();
    let inputs = expand_inputs(&args.files)?;
    let mut aggregator = Aggregator::new(args.config()?);
    // The tick lets an idle stream's finished windows out without waiting for more input.
    let tick = Duration::from_nanos((args.window as u64 / 10).clamp(10_000_000, 1_000_000_000));
    let mut opts = args.input.stream_options(Some(tick));
    opts.block_bytes = tlm::agg::BLOCK_BYTES;
    opts.max_buffered_block = tlm::agg::MAX_BUFFERED_BLOCK_BYTES;
    opts.size_after_first = true;
    opts.linger = tlm::agg::BLOCK_LINGER;
    opts.first_linger = tlm::agg::FIRST_BLOCK_LINGER;
    aggregator.set_threads(opts.threads);
    let hooks = aggregator.hooks();
    tlm::stream::run_with(inputs, &opts, hooks, &mut aggregator, &mut Output::stdout())?;
    Ok(())
}
