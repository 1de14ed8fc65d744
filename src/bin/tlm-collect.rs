//! tlm-collect: gather metrics on an interval.

use std::process::ExitCode;
use tlm::cli::collect::{CollectArgs, Source};
use tlm::collect::system::SystemCollector;
use tlm::io::Output;
use tlm::Metric;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: CollectArgs) -> tlm::Result<()> {
    match args.source {
        Source::System(sys) => {
            let tags = sys.schedule.tag_pairs()?;
            let mut collector = SystemCollector::new(&sys.proc_root)?;
            let mut out = Output::stdout();
            let mut batch: Vec<Metric> = Vec::new();
            tlm::schedule::every(sys.schedule.interval, sys.schedule.count, |now| {
                batch.clear();
                collector.collect(now, &mut batch)?;
                for m in &mut batch {
                    tags.iter().for_each(|(k, v)| m.tags.insert(k, v));
                }
                out.write_ndjson(&batch)?;
                out.flush()
            })
        }
    }
}
