//! Cumulative counters: the increase between two readings, with reset and wrap detection.
//!
//! Integer readings use integer arithmetic, so a Counter64 near 2^64 never loses precision.
//! A drop is a **reset** when the counter's `start_ts` changed (a reboot, a restarted process)
//! and otherwise a **wrap** when it fits a 2^32 or 2^64 modulus plausibly: the implied
//! increase is at most `--max-rate` per second when that is given, else less than half the
//! modulus. Any other drop is a reset, and the new reading counts from zero.

use crate::metric::Value;

/// The previous reading of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub value: Value,
    pub ts: i64,
    pub start_ts: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// The counter grew (or stayed) by this much.
    Increase(Value),
    /// It restarted: the new reading is the increase since the restart.
    Reset(Value),
    /// It wrapped around a 32- or 64-bit modulus.
    Wrap { increase: Value, bits: u8 },
}

impl Step {
    pub fn increase(self) -> Value {
        match self {
            Step::Increase(v) | Step::Reset(v) | Step::Wrap { increase: v, .. } => v,
        }
    }
}

/// Counter starts that differ by less than this are the same start. A start derived from an
/// uptime (SNMP sysUpTime, /proc/uptime) moves by the poll's latency from one reading to the
/// next; a real restart moves it by at least the time between two readings.
pub const START_TOLERANCE_NS: i64 = 1_000_000_000;

/// The step from `prev` to `cur`; `None` when `cur` is not newer than `prev`.
pub fn step(prev: &Reading, cur: &Reading, max_rate: Option<f64>) -> Option<Step> {
    if cur.ts <= prev.ts {
        return None;
    }
    if let (Some(p), Some(c)) = (prev.start_ts, cur.start_ts) {
        if (c - p).abs() >= START_TOLERANCE_NS {
            return Some(Step::Reset(cur.value));
        }
    }
    let (Some(p), Some(c)) = (prev.value.as_i128(), cur.value.as_i128()) else {
        let d = cur.value.as_f64() - prev.value.as_f64();
        return Some(if d >= 0.0 {
            Step::Increase(Value::F64(d))
        } else {
            Step::Reset(cur.value)
        });
    };
    if c >= p {
        return Some(Step::Increase(Value::from_i128(c - p)));
    }
    let seconds = (cur.ts - prev.ts) as f64 / 1e9;
    for bits in [32u8, 64] {
        let modulus: i128 = 1i128 << bits;
        if p >= modulus || c < 0 || p < 0 {
            continue;
        }
        let wrapped = modulus - p + c;
        let plausible = match max_rate {
            Some(r) => wrapped as f64 / seconds <= r,
            None => wrapped < modulus / 2,
        };
        if plausible {
            return Some(Step::Wrap {
                increase: Value::from_i128(wrapped),
                bits,
            });
        }
    }
    Some(Step::Reset(cur.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(value: Value, ts: i64, start_ts: Option<i64>) -> Reading {
        Reading {
            value,
            ts,
            start_ts,
        }
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn plain_increase_is_exact_near_2_pow_64() {
        let a = r(Value::U64(u64::MAX - 10), 0, None);
        let b = r(Value::U64(u64::MAX), S, None);
        assert_eq!(step(&a, &b, None), Some(Step::Increase(Value::U64(10))));
    }

    #[test]
    fn counter32_wrap() {
        let a = r(Value::U64(4_294_967_000), 0, None);
        let b = r(Value::U64(500), 10 * S, None);
        assert_eq!(
            step(&a, &b, None),
            Some(Step::Wrap {
                increase: Value::U64(796),
                bits: 32
            })
        );
    }

    #[test]
    fn counter64_wrap_near_2_pow_64() {
        let a = r(Value::U64(u64::MAX - 99), 0, None);
        let b = r(Value::U64(400), 10 * S, None);
        assert_eq!(
            step(&a, &b, None),
            Some(Step::Wrap {
                increase: Value::U64(500),
                bits: 64
            })
        );
    }

    #[test]
    fn start_ts_change_is_a_reset() {
        let a = r(Value::U64(4_294_967_000), 0, Some(1));
        let b = r(Value::U64(500), 10 * S, Some(1 + S));
        assert_eq!(step(&a, &b, None), Some(Step::Reset(Value::U64(500))));
    }

    #[test]
    fn start_ts_jitter_below_a_second_is_not_a_reset() {
        let a = r(Value::U64(1000), 0, Some(5 * S));
        let b = r(Value::U64(1500), 10 * S, Some(5 * S - 3_000_000));
        assert_eq!(step(&a, &b, None), Some(Step::Increase(Value::U64(500))));
    }

    #[test]
    fn max_rate_rejects_implausible_wraps() {
        // A drop from 3e9 to 10 fits a 32-bit wrap of ~1.3e9 in 10 s: too fast at 1e6/s.
        let a = r(Value::U64(3_000_000_000), 0, None);
        let b = r(Value::U64(10), 10 * S, None);
        assert!(matches!(
            step(&a, &b, None),
            Some(Step::Wrap { bits: 32, .. })
        ));
        assert_eq!(step(&a, &b, Some(1e6)), Some(Step::Reset(Value::U64(10))));
    }

    #[test]
    fn big_drop_without_a_plausible_wrap_is_a_reset() {
        let a = r(Value::U64(1_000_000), 0, None);
        let b = r(Value::U64(5), 10 * S, None);
        assert_eq!(step(&a, &b, None), Some(Step::Reset(Value::U64(5))));
    }

    #[test]
    fn floats_and_out_of_order() {
        let a = r(Value::F64(10.5), 0, None);
        let b = r(Value::F64(12.0), S, None);
        assert_eq!(step(&a, &b, None), Some(Step::Increase(Value::F64(1.5))));
        assert_eq!(step(&b, &a, None), None);
    }
}
