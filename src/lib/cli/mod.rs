//! Command-line definitions of every tool (clap), kept in the library so man pages and
//! completions are generated from the same definitions the binaries parse.

pub mod agg;
pub mod collect;
pub mod common;
pub mod publish;
pub mod snmpwalk;
pub mod statsd;

pub use common::{InputArgs, LogArgs, Tool};

/// The exit-status table shared by every `--help` and man page.
pub fn exit_status_help() -> String {
    let mut s = String::from("Exit status:\n");
    for (code, text) in crate::error::Exit::TABLE {
        s.push_str(&format!("  {:<4}{text}\n", code as i32));
    }
    s
}

/// Every tool's clap command, for man pages and completions.
pub fn commands() -> Vec<clap::Command> {
    use clap::CommandFactory;
    vec![
        agg::AggArgs::command(),
        collect::CollectArgs::command(),
        publish::PublishArgs::command(),
        snmpwalk::SnmpwalkArgs::command(),
        statsd::StatsdArgs::command(),
    ]
}
