//! The shape of a line: a line that differs from one decoded before only in the numbers
//! of its top-level `value` (or one-element `values`) and `ts` means what that line meant,
//! with those two numbers. A stream repeats each series' line with new numbers, so finding
//! the numbers and comparing the rest of the line with the earlier one can replace decoding
//! the whole line (`crate::agg::shapes` keeps such lines).
//!
//! A line's holes are found by searching for `"value`, and for `"ts":` unless it follows
//! the value, which could also match inside a string or a nested object. So a shape is
//! only learned from a line whose decoder found its top-level `value`/`values` and `ts` at
//! exactly those bytes (`Spans`): every line that equals it outside the holes, with a
//! plain JSON number in each, then decodes to the same metric but for those numbers.

use super::decode::Spans;
use super::scan;
use memchr::memmem::Finder;

/// Where a line's value sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `"value":N`
    Value,
    /// `"values":[N]`
    Values,
}

/// The byte ranges of a line's value and ts numbers. Small, for caches of many lines: lines
/// longer than 64 KiB have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holes {
    pub slot: Slot,
    pub value: (u16, u16),
    pub ts: (u16, u16),
}

impl Holes {
    /// Both holes, first one first.
    #[inline]
    fn ordered(&self) -> [(u16, u16); 2] {
        if self.value.0 < self.ts.0 {
            [self.value, self.ts]
        } else {
            [self.ts, self.value]
        }
    }

    /// The three stretches of `line` around the holes: what a line of the same shape
    /// has byte for byte.
    #[inline]
    pub fn around<'l>(&self, line: &'l [u8]) -> [&'l [u8]; 3] {
        let [a, b] = self.ordered();
        [
            &line[..a.0 as usize],
            &line[a.1 as usize..b.0 as usize],
            &line[b.1 as usize..],
        ]
    }

    /// Whether the decoder found the top-level fields exactly at these holes.
    pub fn agree(&self, spans: &Spans) -> bool {
        let wide = |(a, b): (u16, u16)| (u32::from(a), u32::from(b));
        let (value, ts) = (wide(self.value), wide(self.ts));
        let ts = spans.ts == ts;
        match self.slot {
            Slot::Value => ts && spans.value == value && spans.values == (0, 0),
            Slot::Values => {
                let array = (value.0 - 1, value.1 + 1);
                ts && spans.values == array && spans.value == (0, 0)
            }
        }
    }

    /// The bytes of a hole of `line`.
    #[inline]
    pub fn text(line: &[u8], (start, end): (u16, u16)) -> &[u8] {
        &line[start as usize..end as usize]
    }
}

/// Finds the holes of lines.
pub struct HoleFinder {
    value: Finder<'static>,
    ts: Finder<'static>,
}

impl Default for HoleFinder {
    fn default() -> Self {
        HoleFinder {
            value: Finder::new(b"\"value"),
            ts: Finder::new(b"\"ts\":"),
        }
    }
}

impl HoleFinder {
    /// The first `"value":N` or `"values":[N]` and the first `"ts":N` of `line`, when both
    /// hold a run of number characters.
    pub fn holes(&self, line: &[u8]) -> Option<Holes> {
        if line.len() > usize::from(u16::MAX) {
            return None;
        }
        let at = self.value.find(line)? + 6;
        let (slot, start) = match line.get(at..at + 4)? {
            [b'"', b':', ..] => (Slot::Value, at + 2),
            b"s\":[" => (Slot::Values, at + 4),
            _ => return None,
        };
        let value = number_run(line, start)?;
        let mut after = value.1 as usize;
        if slot == Slot::Values {
            if line.get(after) != Some(&b']') {
                return None;
            }
            after += 1;
        }
        // Writers put `ts` right after the value; otherwise the first `"ts":` is taken.
        let ts_key = match line.get(after..after + 6) {
            Some(b",\"ts\":") => after + 1,
            _ => self.ts.find(line)?,
        };
        let ts = number_run(line, ts_key + 5)?;
        Some(Holes { slot, value, ts })
    }
}

/// The non-empty run of characters that can make up a JSON number starting at `start`:
/// digits eight at a time, then byte by byte whatever else a number holds.
fn number_run(line: &[u8], start: usize) -> Option<(u16, u16)> {
    let mut end = start;
    while let Some(n) = scan::leading_digit_count(line, end) {
        end += n;
        if n < 8 {
            break;
        }
    }
    end += line
        .get(end..)?
        .iter()
        .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(line.len() - end);
    // Lines are at most 64 KiB here (see `holes`).
    (end > start).then_some((start as u16, end as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holes(line: &str) -> Option<Holes> {
        HoleFinder::default().holes(line.as_bytes())
    }

    #[test]
    fn holes_are_the_number_texts() {
        let line = r#"{"name":"x","kind":"gauge","value":-1.5e3,"ts":17,"tags":{"a":"b"}}"#;
        let h = holes(line).unwrap();
        assert_eq!(h.slot, Slot::Value);
        assert_eq!(Holes::text(line.as_bytes(), h.value), b"-1.5e3");
        assert_eq!(Holes::text(line.as_bytes(), h.ts), b"17");
        let [a, b, c] = h.around(line.as_bytes());
        assert_eq!(a, br#"{"name":"x","kind":"gauge","value":"#);
        assert_eq!(b, br#","ts":"#);
        assert_eq!(c, br#","tags":{"a":"b"}}"#);
    }

    #[test]
    fn a_hole_is_the_longest_run_of_number_characters() {
        for text in [
            "1",
            "12345678",
            "1234567890123456789",
            "-1.5e+3",
            "1e-2",
            "9.",
            "+-+",
        ] {
            for tail in ["", ",", "}", "x1234567", ",\"a\":12345678901234567890"] {
                let line = format!("{text}{tail}");
                let want = (0, text.len() as u16);
                assert_eq!(number_run(line.as_bytes(), 0), Some(want), "{line}");
            }
        }
        assert_eq!(number_run(b"x1", 0), None);
        assert_eq!(number_run(b"", 0), None);
    }

    #[test]
    fn a_values_hole_holds_one_number() {
        let line = r#"{"ts":5,"name":"d","kind":"distribution","values":[2.5]}"#;
        let h = holes(line).unwrap();
        assert_eq!(h.slot, Slot::Values);
        assert_eq!(Holes::text(line.as_bytes(), h.value), b"2.5");
        assert!(holes(r#"{"name":"d","kind":"distribution","values":[1,2],"ts":5}"#).is_none());
    }

    #[test]
    fn ts_is_taken_after_the_value_or_searched_for() {
        for (line, ts) in [
            (
                r#"{"name":"x","value":1,"ts":12345678901,"tags":{}}"#,
                "12345678901",
            ),
            (r#"{"name":"d","values":[2.5],"ts":7}"#, "7"),
            (r#"{"ts":5,"name":"x","kind":"gauge","value":1}"#, "5"),
            (r#"{"name":"x","value":1,"unit":"s","ts":99}"#, "99"),
        ] {
            let h = holes(line).unwrap();
            assert_eq!(Holes::text(line.as_bytes(), h.ts), ts.as_bytes(), "{line}");
        }
    }

    #[test]
    fn lines_without_plain_number_holes_have_none() {
        for line in [
            r#"{"name":"x","kind":"gauge","value":1}"#,
            r#"{"name":"x","kind":"gauge","value": 1,"ts":5}"#,
            r#"{"name":"x","kind":"gauge","value":"NaN","ts":5}"#,
            r#"{"name":"x","kind":"gauge","value":1,"ts":"2026-01-01T00:00:00Z"}"#,
            r#"{"name":"x","kind":"gauge","valued":1,"ts":5}"#,
        ] {
            assert!(holes(line).is_none(), "{line}");
        }
        let long = format!(r#"{{"name":"{}","value":1,"ts":5}}"#, "x".repeat(70_000));
        assert!(holes(&long).is_none());
    }

    #[test]
    fn holes_agree_only_with_the_decoders_fields() {
        let line = r#"{"name":"x","kind":"gauge","value":12,"ts":345}"#;
        let h = holes(line).unwrap();
        let spans = Spans {
            value: (35, 37),
            values: (0, 0),
            ts: (43, 46),
        };
        assert!(h.agree(&spans));
        assert!(!h.agree(&Spans {
            ts: (40, 46),
            ..spans
        }));
        assert!(!h.agree(&Spans {
            values: (1, 2),
            ..spans
        }));
    }
}
