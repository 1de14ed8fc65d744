//! tlm-collect: gather metrics on an interval.

use std::process::ExitCode;
use tlm::cli::collect::{glob_set, CollectArgs, Source};
use tlm::collect;
use tlm::collect::exec::ExecCollector;
use tlm::collect::http_json::{self, HttpJsonCollector};
use tlm::collect::nginx::NginxCollector;
use tlm::collect::prom_text::PromCollector;
use tlm::collect::system::SystemCollector;
use tlm::collect::tail::{TailCollector, TailConfig};
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
            let mut collector = SystemCollector::new(&sys.proc_root)?;
            collector.set_mounts(glob_set("--mount", &sys.mounts)?);
            collector.set_interfaces(glob_set("--interface", &sys.interfaces)?);
            collect::run(&mut collector, &sys.schedule.plan()?, &mut out)
        }
        Source::Exec(exec) => {
            let timeout = exec.timeout.duration();
            let mut collector =
                ExecCollector::new(exec.command.clone(), timeout, exec.input_format)?;
            collect::run(&mut collector, &exec.schedule.plan()?, &mut out)
        }
        Source::Nginx(page) => {
            let timeout = page.timeout.duration();
            let mut collector = NginxCollector::new(&page.url, timeout)?;
            collect::run(&mut collector, &page.schedule.plan()?, &mut out)
        }
        Source::Http(page) => {
            let timeout = page.timeout.duration();
            let fields = page
                .fields
                .iter()
                .map(|f| http_json::parse_field_arg(f))
                .collect::<tlm::Result<Vec<_>>>()?;
            let mut collector = HttpJsonCollector::new(&page.url, timeout, fields)?;
            collect::run(&mut collector, &page.schedule.plan()?, &mut out)
        }
        Source::Tail(t) => {
            let mut collector = TailCollector::new(TailConfig {
                path: t.file.clone(),
                pattern: t.pattern.clone(),
                counts: t.counts.clone(),
                observes: t.observes.clone(),
                tags: t.tag_captures.clone(),
                from_start: t.from_start,
            })?;
            collect::run(&mut collector, &t.schedule.plan()?, &mut out)
        }
        Source::Prometheus(page) => {
            let timeout = page.timeout.duration();
            let mut collector = PromCollector::new(&page.url, timeout)?;
            collect::run(&mut collector, &page.schedule.plan()?, &mut out)
        }
    }
}
