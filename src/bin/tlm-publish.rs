//! tlm-publish: deliver tlm metrics in a backend's format.

use std::process::ExitCode;
use tlm::cli::publish::PublishArgs;
use tlm::io::{expand_inputs, Output};
use tlm::publish::FormatWriter;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: PublishArgs) -> tlm::Result<()> {
    let inputs = expand_inputs(&args.inputs)?;
    let mut writer = FormatWriter::new(args.format);
    tlm::stream::run(
        inputs,
        &args.input.stream_options(None),
        &mut writer,
        &mut Output::stdout(),
    )?;
    Ok(())
}
