//! tlm-collect: gather metrics on an interval.

use std::process::ExitCode;
use tlm::cli::collect::{CollectArgs, Source};
use tlm::collect::{self, task};
use tlm::io::Output;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: CollectArgs) -> tlm::Result<()> {
    let mut out = Output::stdout();
    if let Source::Task(t) = &args.source {
        let mut sources = Vec::new();
        for src in task::load(&t.file)? {
            let (inner, plan) = Source::from_task(&src)?.build()?;
            sources.push((
                task::Named {
                    name: src.name,
                    inner,
                },
                plan,
            ));
        }
        return task::run(sources, &mut out);
    }
    let (mut source, plan) = args.source.build()?;
    collect::run(source.as_mut(), &plan, &mut out)
}
