//! A batch: the payload of one send, as the destination's encoder sealed it.

/// One unit of delivery: sent, retried, spooled and replayed whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The bytes as they go on the wire (framed and compressed where the protocol wants).
    pub payload: Vec<u8>,
    /// How many input metrics the payload carries.
    pub points: u64,
}

impl Batch {
    pub fn new(payload: Vec<u8>, points: u64) -> Batch {
        Batch { payload, points }
    }

    pub fn bytes(&self) -> usize {
        self.payload.len()
    }
}
