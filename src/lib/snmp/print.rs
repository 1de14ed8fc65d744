//! `--format text`: varbinds as net-snmp prints them, streamed as they arrive, so
//! tlm-snmpwalk can stand in for snmpwalk/snmpbulkwalk at a prompt. With several agents each
//! line starts with the agent's name.

use super::mib::Mib;
use super::pdu::VarBind;
use super::poller::{Outcome, Sink, Target};
use crate::error::Result;
use crate::io::Output;

pub struct TextSink<'a> {
    pub mib: Option<&'a Mib>,
    /// `-On`: numeric OIDs.
    pub numeric: bool,
    pub targets: &'a [Target],
    pub out: &'a mut Output,
    line: String,
}

impl<'a> TextSink<'a> {
    pub fn new(
        mib: Option<&'a Mib>,
        numeric: bool,
        targets: &'a [Target],
        out: &'a mut Output,
    ) -> Self {
        TextSink {
            mib,
            numeric,
            targets,
            out,
            line: String::with_capacity(256),
        }
    }
}

impl Sink for TextSink<'_> {
    fn varbind(&mut self, target: usize, vb: &VarBind) {
        self.line.clear();
        if self.targets.len() > 1 {
            self.line.push_str(&self.targets[target].name);
            self.line.push_str(": ");
        }
        match self.mib {
            Some(mib) => super::text::write_varbind_mib(&mut self.line, vb, mib, self.numeric),
            None => super::text::write_varbind(&mut self.line, vb),
        }
        self.line.push('\n');
        self.out.buf().extend_from_slice(self.line.as_bytes());
    }

    fn finished(&mut self, _target: usize, _outcome: &Outcome) -> Result<()> {
        self.out.maybe_write()
    }
}
