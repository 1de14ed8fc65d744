//! tlm-publish: deliver tlm metrics to backends, or in a backend's format to stdout.

use std::process::ExitCode;
use std::time::Duration;
use tlm::cli::publish::PublishArgs;
use tlm::io::{expand_inputs, Output};
use tlm::publish::progress::FileProgress;
use tlm::publish::Publisher;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: PublishArgs) -> tlm::Result<()> {
    let targets = args.targets()?;
    let opts = args.options()?;
    let inputs = expand_inputs(&args.inputs)?;
    let mut publisher = Publisher::start(&targets, &opts)?;
    // Batches open for --linger are sealed on this tick, so a slow stream is not held back.
    let tick = (!targets.is_empty())
        .then(|| (opts.linger / 4).clamp(Duration::from_millis(20), Duration::from_millis(250)));
    let mut stream = args.input.stream_options(tick);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    stream.bytes_read = Some(read.clone());
    let _progress = FileProgress::start(&inputs, read);
    let hooks = publisher.hooks();
    tlm::stream::run_with(
        inputs,
        &stream,
        hooks,
        &mut publisher,
        &mut Output::stdout(),
    )?;
    Ok(())
}
