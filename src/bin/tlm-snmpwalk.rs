//! tlm-snmpwalk: poll SNMP agents into tlm metrics.

use std::process::ExitCode;
use tlm::cli::snmpwalk::SnmpwalkArgs;

#[global_allocator]
static ALLOC: tlm::alloc::Tuned = tlm::alloc::Tuned;

fn main() -> ExitCode {
    tlm::runtime::main(|args: SnmpwalkArgs| tlm::snmp::command::run(&args))
}
