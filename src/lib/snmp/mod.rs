//! SNMP for `tlm-snmpwalk`: our own wire codec (v1, v2c, v3 framing) written for a poller that
//! decodes without per-varbind allocation and routes replies by request id; USM security
//! (RFC 3414, 3826, 7860); an SMI parser and the built-in standard MIBs; net-snmp-style text.

pub mod ber;
pub mod command;
pub mod hint;
pub mod metrics;
pub mod mib;
pub mod oid;
pub mod pdu;
pub mod poller;
pub mod print;
pub mod session;
pub mod smi;
pub mod target;
pub mod text;
pub mod usm;
pub mod walk;
