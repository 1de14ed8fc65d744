//! Graphite's carbon pickle receiver (port 2004): frames of a 4-byte big-endian length and a
//! protocol 2 pickle of `[(path, (timestamp, value)), …]`.
//!
//! Paths, flattening and tags are the plaintext encoder's (`graphite::Paths`), so a series
//! gets the same name whichever carbon receiver it is sent to.

use super::graphite::Paths;
use super::{all_or_nothing, Encoder, Unsupported};
use crate::metric::{Metric, Value};

/// Carbon's `MetricPickleReceiver` drops the connection on a frame longer than this
/// (Twisted's `Int32StringReceiver.MAX_LENGTH`, which carbon sets to 2**20).
const MAX_FRAME: usize = 1 << 20;
/// PROTO 2, EMPTY_LIST, MARK before the items; APPENDS, STOP after.
const FRAME_HEAD: &[u8] = b"\x80\x02](";
const FRAME_TAIL: &[u8] = b"e.";
/// The largest item that still fits in a frame of its own.
const MAX_ITEM: usize = MAX_FRAME - FRAME_HEAD.len() - FRAME_TAIL.len();

const BINUNICODE: u8 = b'X';
const BININT: u8 = b'J';
const BINFLOAT: u8 = b'G';
const LONG1: u8 = 0x8a;
const TUPLE2: u8 = 0x86;

/// Encoder for carbon's pickle protocol.
///
/// `encode` appends one pickled item `(path, (seconds, value))` per Graphite point to the
/// body; `seal` wraps the items in frames, starting a new frame wherever the next item would
/// take one past carbon's 1 MiB limit. Timestamps are whole seconds, rounded towards the
/// past. Values: integers that fit 32 bits are BININT, other integers a double when the
/// double is exact and LONG1 (a Python int) otherwise, so `u64::MAX` arrives exact; floats
/// are BINFLOAT. A point whose item alone exceeds a frame is `PICKLE_TOO_LARGE`. Other
/// `Unsupported` cases are the plaintext encoder's.
///
/// Contract: `seal` must be given exactly the bytes that `encode` appended since the
/// previous `seal` (or since the encoder was made). The encoder records where each item ends
/// so sealing is a walk over those offsets; a body that does not match them is split by
/// reading the items back instead, which costs a pass over the body but never splits an
/// item.
#[derive(Debug, Default)]
pub struct PickleEncoder {
    paths: Paths,
    /// Offset in the body, since the last seal, just past each item.
    item_ends: Vec<usize>,
    /// Bytes appended since the last seal.
    pending: usize,
}

impl PickleEncoder {
    pub fn with_tags(mode: super::graphite::TagMode) -> PickleEncoder {
        PickleEncoder {
            paths: Paths::with_tags(mode),
            ..PickleEncoder::default()
        }
    }
}

impl Encoder for PickleEncoder {
    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        let items_before = self.item_ends.len();
        let start = out.len();
        let r = all_or_nothing(out, |out| self.write(m, start, out));
        match r {
            Ok(()) => self.pending += out.len() - start,
            Err(_) => self.item_ends.truncate(items_before),
        }
        r
    }

    fn seal(&mut self, body: &[u8], out: &mut Vec<u8>) {
        let recorded = self.pending == body.len() && self.item_ends.last() == Some(&body.len());
        if recorded {
            write_frames(body, &self.item_ends, out);
        } else {
            write_frames(body, &scan_items(body), out);
        }
        self.item_ends.clear();
        self.pending = 0;
    }

    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }
}

impl PickleEncoder {
    fn write(&mut self, m: &Metric, start: usize, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        let secs = m.ts.div_euclid(1_000_000_000);
        let base = self.pending;
        let ends = &mut self.item_ends;
        let mut too_large = false;
        self.paths.points(m, |path, v| {
            let at = out.len();
            write_item(out, path, secs, v);
            too_large |= out.len() - at > MAX_ITEM;
            ends.push(base + out.len() - start);
        })?;
        if too_large {
            return Err(Unsupported::PICKLE_TOO_LARGE);
        }
        Ok(())
    }
}

fn write_item(out: &mut Vec<u8>, path: &[u8], secs: i64, v: Value) {
    out.push(BINUNICODE);
    // A longer path is rejected by the caller's item-size check before it is sent.
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(path);
    write_int(out, i128::from(secs));
    match v {
        Value::U64(u) => write_exact(out, i128::from(u)),
        Value::I64(i) => write_exact(out, i128::from(i)),
        Value::F64(f) => write_float(out, f),
    }
    out.push(TUPLE2);
    out.push(TUPLE2);
}

/// An integer value: a double when that is exact (carbon stores doubles anyway), else a
/// Python int so that no digit is lost on the way.
fn write_exact(out: &mut Vec<u8>, v: i128) {
    let as_double = v as f64;
    if i32::try_from(v).is_err() && as_double as i128 == v {
        write_float(out, as_double);
    } else {
        write_int(out, v);
    }
}

fn write_float(out: &mut Vec<u8>, v: f64) {
    out.push(BINFLOAT);
    out.extend_from_slice(&v.to_be_bytes());
}

/// BININT when it fits 32 bits, else LONG1: little-endian two's complement, shortest form.
fn write_int(out: &mut Vec<u8>, v: i128) {
    if let Ok(small) = i32::try_from(v) {
        out.push(BININT);
        out.extend_from_slice(&small.to_le_bytes());
        return;
    }
    let bytes = v.to_le_bytes();
    let mut n = bytes.len();
    // A top byte that only repeats the sign of the byte below it is redundant.
    while n > 1 {
        let (top, below) = (bytes[n - 1], bytes[n - 2]);
        let redundant = (top == 0 && below < 0x80) || (top == 0xff && below >= 0x80);
        if !redundant {
            break;
        }
        n -= 1;
    }
    out.push(LONG1);
    out.push(n as u8);
    out.extend_from_slice(&bytes[..n]);
}

/// Packs items into as few frames as the size limit allows; `ends` are item end offsets.
fn write_frames(body: &[u8], ends: &[usize], out: &mut Vec<u8>) {
    let mut frame_start = 0;
    let mut last_end = 0;
    for &end in ends {
        if end - frame_start > MAX_ITEM && last_end > frame_start {
            write_frame(&body[frame_start..last_end], out);
            frame_start = last_end;
        }
        last_end = end;
    }
    if last_end > frame_start {
        write_frame(&body[frame_start..last_end], out);
    }
}

fn write_frame(items: &[u8], out: &mut Vec<u8>) {
    let len = FRAME_HEAD.len() + items.len() + FRAME_TAIL.len();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(FRAME_HEAD);
    out.extend_from_slice(items);
    out.extend_from_slice(FRAME_TAIL);
}

/// Item end offsets read back from a body of items as `write_item` makes them. Bytes that
/// do not read as items count as one last item, so they are still sent, whole.
fn scan_items(body: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while let Some(end) = item_end(body, at) {
        ends.push(end);
        at = end;
    }
    if at < body.len() {
        ends.push(body.len());
    }
    ends
}

fn item_end(body: &[u8], at: usize) -> Option<usize> {
    let (&op, rest) = body.get(at..)?.split_first()?;
    if op != BINUNICODE {
        return None;
    }
    let len = u32::from_le_bytes(*rest.first_chunk()?) as usize;
    let mut end = at + 5 + len;
    for _ in 0..2 {
        end += number_len(body.get(end..)?)?;
    }
    (body.get(end..end + 2)? == [TUPLE2, TUPLE2]).then_some(end + 2)
}

fn number_len(b: &[u8]) -> Option<usize> {
    match *b.first()? {
        BININT => Some(5),
        BINFLOAT => Some(9),
        LONG1 => Some(2 + usize::from(*b.get(1)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    /// A number as Python would hold it after `pickle.loads`.
    #[derive(Debug, PartialEq)]
    enum Py {
        Int(i128),
        Float(f64),
    }

    type Item = (String, Py, Py);

    /// Unpickles one frame of exactly the opcodes this encoder writes.
    fn unpickle(frame: &[u8]) -> Vec<Item> {
        let body = frame
            .strip_prefix(FRAME_HEAD)
            .and_then(|b| b.strip_suffix(FRAME_TAIL))
            .expect("frame head and tail");
        let mut items = Vec::new();
        let mut b = body;
        while !b.is_empty() {
            assert_eq!(b[0], b'X');
            let len = u32::from_le_bytes(b[1..5].try_into().unwrap()) as usize;
            let path = String::from_utf8(b[5..5 + len].to_vec()).unwrap();
            b = &b[5 + len..];
            let ts = number(&mut b);
            let v = number(&mut b);
            assert_eq!(&b[..2], b"\x86\x86");
            b = &b[2..];
            items.push((path, ts, v));
        }
        items
    }

    fn number(b: &mut &[u8]) -> Py {
        let (n, used) = match b[0] {
            b'J' => (
                Py::Int(i32::from_le_bytes(b[1..5].try_into().unwrap()).into()),
                5,
            ),
            b'G' => (
                Py::Float(f64::from_be_bytes(b[1..9].try_into().unwrap())),
                9,
            ),
            0x8a => {
                let n = b[1] as usize;
                let mut v: i128 = if b[1 + n] >= 0x80 { -1 } else { 0 };
                for &byte in b[2..2 + n].iter().rev() {
                    v = (v << 8) | i128::from(byte);
                }
                (Py::Int(v), 2 + n)
            }
            op => panic!("unexpected opcode {op:#x}"),
        };
        *b = &b[used..];
        n
    }

    /// Splits a sealed payload into its frames, checking each length prefix.
    fn frames(payload: &[u8]) -> Vec<&[u8]> {
        let mut frames = Vec::new();
        let mut p = payload;
        while !p.is_empty() {
            let len = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
            assert!(len <= MAX_FRAME);
            frames.push(&p[4..4 + len]);
            p = &p[4 + len..];
        }
        frames
    }

    fn sealed(e: &mut PickleEncoder, ms: &[Metric]) -> Vec<u8> {
        let mut body = Vec::new();
        for m in ms {
            let _ = e.encode(m, &mut body);
        }
        let mut payload = Vec::new();
        e.seal(&body, &mut payload);
        payload
    }

    const TS: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn exact_bytes_of_one_gauge() {
        let m = Metric::gauge("g", Value::F64(0.5), TS).with_tag("h", "a");
        let payload = sealed(&mut PickleEncoder::default(), &[m]);
        let mut want = vec![0, 0, 0, 32, 0x80, 2, b']', b'(', b'X', 5, 0, 0, 0];
        want.extend_from_slice(b"g;h=a");
        want.push(b'J');
        want.extend_from_slice(&1_700_000_000i32.to_le_bytes());
        want.push(b'G');
        want.extend_from_slice(&0.5f64.to_be_bytes());
        want.extend_from_slice(b"\x86\x86e.");
        assert_eq!(payload, want);
    }

    #[test]
    fn numbers_keep_their_exact_value() {
        let cases = [
            (Value::U64(7), Py::Int(7)),
            (Value::I64(-7), Py::Int(-7)),
            (Value::U64(1 << 40), Py::Float((1u64 << 40) as f64)),
            (Value::U64(u64::MAX), Py::Int(u64::MAX.into())),
            (Value::U64((1 << 53) + 1), Py::Int((1 << 53) + 1)),
            (Value::I64(i64::MIN), Py::Float(i64::MIN as f64)),
            (Value::I64(i64::MIN + 1), Py::Int((i64::MIN + 1).into())),
            (Value::F64(5.0), Py::Float(5.0)),
        ];
        for (v, want) in cases {
            let payload = sealed(&mut PickleEncoder::default(), &[Metric::gauge("g", v, 0)]);
            let items = unpickle(frames(&payload)[0]);
            assert_eq!(items, [("g".to_owned(), Py::Int(0), want)]);
        }
    }

    #[test]
    fn long1_is_shortest_twos_complement() {
        let long = |v: i128| {
            let mut out = Vec::new();
            write_int(&mut out, v);
            out
        };
        assert_eq!(long(1 << 31), [0x8a, 5, 0, 0, 0, 0x80, 0]);
        assert_eq!(
            long(-(1 << 31) - 1),
            [0x8a, 5, 0xff, 0xff, 0xff, 0x7f, 0xff]
        );
        assert_eq!(long(-(1 << 39)), [0x8a, 5, 0, 0, 0, 0, 0x80]);
        assert_eq!(long(u64::MAX.into())[..2], [0x8a, 9]);
        assert_eq!(long(-1), [b'J', 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn timestamps_beyond_32_bits_are_long1() {
        let m = Metric::gauge("g", Value::U64(1), i64::MAX);
        let payload = sealed(&mut PickleEncoder::default(), &[m]);
        let items = unpickle(frames(&payload)[0]);
        assert_eq!(items[0].1, Py::Int(9_223_372_036));
        let m = Metric::gauge("g", Value::U64(1), -1);
        let payload = sealed(&mut PickleEncoder::default(), &[m]);
        assert_eq!(unpickle(frames(&payload)[0])[0].1, Py::Int(-1));
    }

    #[test]
    fn summaries_use_the_graphite_paths() {
        let m = Metric {
            name: "db query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.99, 80.0)],
            count: Some(4),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("env", "prod");
        let payload = sealed(&mut PickleEncoder::default(), &[m]);
        let paths: Vec<_> = unpickle(frames(&payload)[0])
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        assert_eq!(paths, ["db_query.count;env=prod", "db_query.p99;env=prod"]);
    }

    #[test]
    fn rejected_metrics_leave_body_and_offsets_alone() {
        let mut e = PickleEncoder::default();
        let mut body = Vec::new();
        e.encode(&Metric::gauge("a", Value::U64(1), 0), &mut body)
            .unwrap();
        let before = body.clone();
        let nan = Metric::gauge("b", Value::F64(f64::NAN), 0);
        assert_eq!(e.encode(&nan, &mut body), Err(Unsupported::NON_FINITE));
        let huge = Metric::gauge(&"x".repeat(MAX_FRAME), Value::U64(1), 0);
        assert_eq!(
            e.encode(&huge, &mut body),
            Err(Unsupported::PICKLE_TOO_LARGE)
        );
        assert_eq!(body, before);
        assert_eq!(e.item_ends, [body.len()]);
        let mut payload = Vec::new();
        e.seal(&body, &mut payload);
        assert_eq!(unpickle(frames(&payload)[0]).len(), 1);
    }

    fn big_batch(e: &mut PickleEncoder) -> (Vec<u8>, usize) {
        // About 100 KiB per metric: a few dozen of them need several frames.
        let name = "n".repeat(100_000);
        let mut body = Vec::new();
        let n = 25;
        for i in 0..n {
            let m = Metric::gauge(&name, Value::U64(i), 0);
            e.encode(&m, &mut body).unwrap();
        }
        (body, n as usize)
    }

    fn check_split(payload: &[u8], n: usize) {
        let frames = frames(payload);
        assert_eq!(frames.len(), 3);
        let values: Vec<_> = frames
            .iter()
            .flat_map(|f| unpickle(f))
            .map(|(_, _, v)| v)
            .collect();
        let want: Vec<_> = (0..n as i128).map(Py::Int).collect();
        assert_eq!(values, want);
    }

    #[test]
    fn seal_splits_at_item_boundaries() {
        let mut e = PickleEncoder::default();
        let (body, n) = big_batch(&mut e);
        let mut payload = Vec::new();
        e.seal(&body, &mut payload);
        check_split(&payload, n);
        // The offsets were used up: the next body starts from zero.
        assert!(e.item_ends.is_empty());
        let mut again = Vec::new();
        e.seal(&[], &mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn seal_reads_items_back_when_the_body_is_not_the_recorded_one() {
        let mut e = PickleEncoder::default();
        let (body, n) = big_batch(&mut e);
        let mut payload = Vec::new();
        PickleEncoder::default().seal(&body, &mut payload);
        check_split(&payload, n);
        // Foreign bytes travel whole, in a frame of their own.
        let mut payload = Vec::new();
        PickleEncoder::default().seal(b"junk", &mut payload);
        assert_eq!(payload, b"\0\0\0\x0a\x80\x02](junke.");
    }

    #[test]
    fn python_unpickles_the_frames() {
        // scripts/test installs python3; carbon's own reader is Python's pickle.
        let python = std::process::Command::new("python3")
            .arg("--version")
            .output();
        assert!(
            python.is_ok_and(|o| o.status.success()),
            "python3 is needed to check the frames with pickle.loads"
        );
        let h = Metric {
            name: "lat".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Cumulative),
            bounds: vec![0.5],
            counts: vec![1, 2],
            sum: Some(2.5),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("host", "é");
        let metrics = [
            h,
            Metric::gauge("big", Value::U64(u64::MAX), -1),
            Metric::gauge("neg", Value::I64(-3_000_000_000), i64::MAX),
        ];
        let payload = sealed(&mut PickleEncoder::default(), &metrics);
        let script = "import pickle,struct,sys\n\
            d=sys.stdin.buffer.read()\n\
            while d:\n\
            \x20 n=struct.unpack('>I',d[:4])[0]\n\
            \x20 print(repr(pickle.loads(d[4:4+n])))\n\
            \x20 d=d[4+n:]\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&payload).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "[('lat.count;host=é', (1700000000, 3)), ('lat.sum;host=é', (1700000000, 2.5)), \
             ('lat.le_0_5;host=é', (1700000000, 1)), ('lat.le_inf;host=é', (1700000000, 3)), \
             ('big', (-1, 18446744073709551615)), ('neg', (9223372036, -3000000000.0))]\n"
        );
    }
}
