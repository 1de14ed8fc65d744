//! tlm-collect: gather metrics on an interval.

use std::process::ExitCode;
use std::time::Duration;
use tlm::cli::collect::{glob_set, CollectArgs, Source};
use tlm::collect;
use tlm::collect::exec::ExecCollector;
use tlm::collect::nginx::NginxCollector;
use tlm::collect::prom_text::PromCollector;
use tlm::collect::system::SystemCollector;
use tlm::io::Output;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(run)
}

fn run(args: CollectArgs) -> tlm::Result<()> {
    let mut out = Output::stdout();
    match args.source {
        Source::System(sys) => {
            let tags = sys.schedule.tag_pairs()?;
            let mut collector = SystemCollector::new(&sys.proc_root)?;
            collector.set_mounts(glob_set("--mount", &sys.mounts)?);
            collector.set_interfaces(glob_set("--interface", &sys.interfaces)?);
            let s = &sys.schedule;
            collect::run(&mut collector, s.interval, s.count, &tags, &mut out)
        }
        Source::Exec(exec) => {
            let tags = exec.schedule.tag_pairs()?;
            let timeout = Duration::from_nanos(exec.timeout as u64);
            let mut collector =
                ExecCollector::new(exec.command.clone(), timeout, exec.input_format)?;
            let s = &exec.schedule;
            collect::run(&mut collector, s.interval, s.count, &tags, &mut out)
        }
        Source::Nginx(page) => {
            let timeout = Duration::from_nanos(page.timeout as u64);
            let mut collector = NginxCollector::new(&page.url, timeout)?;
            let (s, tags) = (&page.schedule, page.schedule.tag_pairs()?);
            collect::run(&mut collector, s.interval, s.count, &tags, &mut out)
        }
        Source::Prometheus(page) => {
            let timeout = Duration::from_nanos(page.timeout as u64);
            let mut collector = PromCollector::new(&page.url, timeout)?;
            let (s, tags) = (&page.schedule, page.schedule.tag_pairs()?);
            collect::run(&mut collector, s.interval, s.count, &tags, &mut out)
        }
    }
}
