//! A small fast generator for jitter and nonces: spread matters there, not unpredictability,
//! so xorshift64 seeded from the clock and the PID is enough and needs no crate.

#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock and the process ID, so two processes started together differ.
    pub fn seeded() -> XorShift {
        let seed = crate::time::now_ns() as u64 ^ (std::process::id() as u64).rotate_left(32);
        XorShift(seed | 1)
    }

    /// Seeded with `seed`, for draws that repeat from run to run (tests).
    pub fn with_seed(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// A number in [0, n), `n` > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_stay_in_range_and_spread() {
        let mut r = XorShift::seeded();
        let draws: Vec<f64> = (0..1000).map(|_| r.unit()).collect();
        assert!(draws.iter().all(|&u| (0.0..1.0).contains(&u)));
        assert!(draws.iter().any(|&u| u < 0.1) && draws.iter().any(|&u| u > 0.9));
    }
}
