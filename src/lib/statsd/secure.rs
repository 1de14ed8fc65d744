//! Brubeck's "statsd-secure" signed datagrams, wire compatible with GitHub Brubeck.
//!
//! A datagram is laid out as:
//!
//! | bytes      | field                                                          |
//! |------------|----------------------------------------------------------------|
//! | `0..32`    | HMAC-SHA256 tag over bytes `32..end`                           |
//! | `32..40`   | timestamp, unsigned Unix seconds, little-endian                |
//! | `40..44`   | nonce, 4 opaque bytes that only make the tag unique            |
//! | `44..end`  | ordinary statsd payload (`k:v|t\nk2:v|t`)                      |
//!
//! Brubeck copies the timestamp with `memcpy` into a `uint64_t`, so it is really host byte
//! order; every Brubeck host is little-endian, and so is the reference sender.
//!
//! # Key
//!
//! The HMAC key is the key file's bytes exactly as they are: no hex or base64 decoding, no
//! trimming. A trailing newline in the file is part of the key. Brubeck keys its HMAC with
//! the bytes of the `hmac_key` config string (`strlen`, so up to the first NUL), so to talk
//! to the same senders, write the file without a newline (`printf %s "$KEY" > key`, not
//! `echo`).
//!
//! # Guarantees
//!
//! [`Verifier::verify`] refuses each bad datagram under exactly one [`Reject`] reason, checked
//! in this order:
//!
//! 1. [`Reject::Short`]: 44 bytes or fewer. A 44-byte datagram is a valid header with an empty
//!    payload; Brubeck accepts and ignores it, we count it as short because it carries no
//!    metric and is not worth a MAC computation or a replay entry.
//! 2. [`Reject::Tampered`]: the tag does not match (compared in constant time). The MAC is
//!    checked before the clock so that a flipped bit in the timestamp counts as tampering,
//!    and `future`/`delayed` only ever count authentic packets (real clock skew or delay).
//! 3. [`Reject::Future`]: timestamp after `now`.
//! 4. [`Reject::Delayed`]: timestamp before `now - max_drift`. The window is inclusive: a
//!    packet exactly `max_drift` seconds old is accepted.
//! 5. [`Reject::Replayed`]: an identical authentic packet was already accepted.
//!
//! Replay detection is exact. Every accepted packet's tag is remembered, bucketed by its
//! timestamp second, until its second falls out of the window; only then, when the packet
//! would be refused as delayed anyway, is its bucket dropped. So no replay is ever accepted
//! (Brubeck's bloom filter resets the slot of the oldest accepted second, so a packet exactly
//! `max_drift` old can be replayed once), and no fresh packet is refused as a replay (Brubeck
//! sizes its filter for 0.1% false positives). Nothing is recorded before the MAC checks
//! out, so forged packets can neither fill memory nor poison the set.
//!
//! The lower edge of the window never moves backwards: if the wall clock steps back, packets
//! older than the latest `now` seen minus `max_drift` stay refused as delayed, because their
//! replay records may already be gone.
//!
//! Memory is bounded by the authentic packets accepted within the window: about 20 to 40
//! bytes per packet (a 16-byte tag prefix plus hash-table overhead), so 500k packets/s with
//! `max_drift` 10 s holds up to 5.5M entries, 110 to 220 MB.
//!
//! A [`Verifier`] only detects replays among the datagrams it sees: every datagram sent to
//! one listening address must go through the same verifier.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::Path;

use hashbrown::HashSet;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 32;
const TS_LEN: usize = 8;
const NONCE_LEN: usize = 4;
/// Tag, timestamp and nonce: the bytes before the statsd payload.
pub const HEADER_LEN: usize = TAG_LEN + TS_LEN + NONCE_LEN;

/// How much of the tag the replay set keeps. Distinct authentic packets have independent
/// pseudo-random tags, so two of them share a 128-bit prefix with probability about
/// n²/2^129 (~1e-28 for 500k packets in one second): no false replays in practice, at half
/// the memory of the full tag. An attacker without the key cannot aim for a collision.
const REPLAY_KEY_LEN: usize = 16;
type ReplayKey = [u8; REPLAY_KEY_LEN];

/// Why a datagram was refused; counted per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// No payload after the 44-byte header (or not even a whole header).
    Short,
    /// The HMAC tag does not match: wrong key, corrupted or forged.
    Tampered,
    /// An authentic packet that was already accepted.
    Replayed,
    /// An authentic packet stamped after `now`.
    Future,
    /// An authentic packet stamped before `now - max_drift`.
    Delayed,
}

impl Reject {
    pub const ALL: [Reject; 5] = [
        Reject::Short,
        Reject::Tampered,
        Reject::Replayed,
        Reject::Future,
        Reject::Delayed,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            Reject::Short => "short",
            Reject::Tampered => "tampered",
            Reject::Replayed => "replayed",
            Reject::Future => "future",
            Reject::Delayed => "delayed",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The tags accepted with one timestamp second.
struct Bucket {
    sec: u64,
    tags: HashSet<ReplayKey>,
}

/// Checks signed datagrams and remembers the accepted ones to refuse replays.
pub struct Verifier {
    /// Keyed once: cloning the keyed state per packet skips hashing the key pads again.
    mac: HmacSha256,
    max_drift: u64,
    /// Oldest acceptable second; only ever rises (see the module docs on clock steps).
    floor: u64,
    /// Ascending by `sec`, all `>= floor`; at most `max_drift + 1` buckets in normal
    /// operation, usually two or three busy ones.
    buckets: VecDeque<Bucket>,
    remembered: usize,
    /// The last dropped bucket's table, emptied, so that the next second does not grow a
    /// table from scratch at full packet rate.
    spare: Option<HashSet<ReplayKey>>,
}

impl fmt::Debug for Verifier {
    // Hand-written so that no key material can end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("max_drift", &self.max_drift)
            .field("floor", &self.floor)
            .field("buckets", &self.buckets.len())
            .field("remembered", &self.remembered)
            .finish_non_exhaustive()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC hashes long keys and pads short ones, so every length is valid.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

impl Verifier {
    pub fn new(key: &[u8], max_drift_secs: u64) -> Verifier {
        Verifier {
            mac: keyed(key),
            max_drift: max_drift_secs,
            floor: 0,
            buckets: VecDeque::new(),
            remembered: 0,
            spare: None,
        }
    }

    /// Checks one datagram received at `now_secs` (Unix seconds); returns the statsd payload.
    pub fn verify<'d>(&mut self, datagram: &'d [u8], now_secs: u64) -> Result<&'d [u8], Reject> {
        self.expire(now_secs);
        if datagram.len() <= HEADER_LEN {
            return Err(Reject::Short);
        }
        let (tag, signed) = datagram
            .split_first_chunk::<TAG_LEN>()
            .ok_or(Reject::Short)?;
        let (ts, rest) = signed.split_first_chunk::<TS_LEN>().ok_or(Reject::Short)?;
        let payload = rest.get(NONCE_LEN..).ok_or(Reject::Short)?;

        let mut mac = self.mac.clone();
        mac.update(signed);
        // `verify_slice` compares in constant time, so the tag cannot be guessed byte by byte.
        if mac.verify_slice(tag).is_err() {
            return Err(Reject::Tampered);
        }

        let ts = u64::from_le_bytes(*ts);
        if ts > now_secs {
            return Err(Reject::Future);
        }
        if ts < self.floor {
            return Err(Reject::Delayed);
        }
        let mut key: ReplayKey = [0; REPLAY_KEY_LEN];
        key.copy_from_slice(&tag[..REPLAY_KEY_LEN]);
        if !self.bucket(ts).insert(key) {
            return Err(Reject::Replayed);
        }
        self.remembered += 1;
        Ok(payload)
    }

    /// Forgets the packets that can no longer be accepted at `now_secs`. `verify` does this
    /// itself; call it on a timer too so that memory is released while no packets arrive.
    pub fn expire(&mut self, now_secs: u64) {
        let floor = now_secs.saturating_sub(self.max_drift);
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        while self.buckets.front().is_some_and(|b| b.sec < floor) {
            if let Some(mut old) = self.buckets.pop_front() {
                self.remembered -= old.tags.len();
                old.tags.clear();
                self.spare = Some(old.tags);
            }
        }
    }

    /// Entries currently held for replay detection (for memory reporting).
    pub fn remembered(&self) -> usize {
        self.remembered
    }

    fn bucket(&mut self, sec: u64) -> &mut HashSet<ReplayKey> {
        let i = self.buckets.partition_point(|b| b.sec < sec);
        if self.buckets.get(i).is_none_or(|b| b.sec != sec) {
            let tags = self.spare.take().unwrap_or_default();
            self.buckets.insert(i, Bucket { sec, tags });
        }
        &mut self.buckets[i].tags
    }
}

/// Builds a signed datagram (used by tests, and later by a statsd relay).
pub fn sign(key: &[u8], ts_secs: u64, nonce: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[0; TAG_LEN]);
    out.extend_from_slice(&ts_secs.to_le_bytes());
    out.extend_from_slice(&nonce.to_le_bytes());
    out.extend_from_slice(payload);
    let mut mac = keyed(key);
    mac.update(&out[TAG_LEN..]);
    out[..TAG_LEN].copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Reads a key file's bytes as they are (a trailing newline is part of the key). A missing
/// or unreadable file is [`Exit::NoInput`](crate::Exit::NoInput) (66), an empty one
/// [`Exit::Usage`](crate::Exit::Usage) (64).
pub fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    let key = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "no such file".to_string(),
            _ => e.to_string(),
        };
        Error::no_input(format!("HMAC key file {}: {why}", path.display()))
    })?;
    if key.is_empty() {
        return Err(Error::usage(format!(
            "HMAC key file {} is empty: an empty key would authenticate anyone",
            path.display()
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exit;

    const KEY: &[u8] = b"tlm-secure-test-key";
    const NOW: u64 = 1_700_000_000;
    const DRIFT: u64 = 10;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reasons_are_distinct() {
        let mut seen: Vec<&str> = Reject::ALL.iter().map(|r| r.reason()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, ["delayed", "future", "replayed", "short", "tampered"]);
    }

    #[test]
    fn valid_datagram_accepted_and_payload_returned() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW, 7, b"a:1|c\nb:2|ms");
        assert_eq!(d.len(), HEADER_LEN + 12);
        assert_eq!(v.verify(&d, NOW), Ok(&b"a:1|c\nb:2|ms"[..]));
        assert_eq!(v.remembered(), 1);
    }

    /// Produced from secure-send.py's own signing lines with a fixed ts and nonce:
    /// ```text
    /// python3 -c 'import hashlib, hmac, struct
    /// body = struct.pack("<Q", 1700000000) + struct.pack("<I", 0xdeadbeef) \
    ///     + "api.requests:1|c\nlatency:12.5|ms".encode()
    /// mac = hmac.new("tlm-secure-test-key".encode(), body, hashlib.sha256).digest()
    /// print((mac + body).hex())'
    /// ```
    #[test]
    fn sign_matches_reference_sender_byte_for_byte() {
        let expected = hex(concat!(
            "72a78ab417c820a01968053e2c5bf724070f7d9b88c3db873a57c500847fccbf",
            "00f1536500000000",
            "efbeadde",
            "6170692e72657175657374733a317c630a6c6174656e63793a31322e357c6d73",
        ));
        let d = sign(KEY, NOW, 0xdead_beef, b"api.requests:1|c\nlatency:12.5|ms");
        assert_eq!(d, expected);
    }

    /// Captured off a UDP socket from an unmodified run of
    /// `secure-send.py PORT tlm-secure-test-key 'svc.hits:3|c'` (random nonce, ts = its clock).
    #[test]
    fn reference_sender_datagram_verifies() {
        let d = hex(concat!(
            "c4fc4f61f65eee12ed4c1be6dddd02c64d0e9283c64e67bdcf57c8e9f8714e68",
            "b32c026b00000000",
            "7c61f86c",
            "7376632e686974733a337c63",
        ));
        let ts = 1_795_304_627;
        let mut v = Verifier::new(KEY, DRIFT);
        assert_eq!(v.verify(&d, ts), Ok(&b"svc.hits:3|c"[..]));
        assert_eq!(v.verify(&d, ts), Err(Reject::Replayed));
    }

    #[test]
    fn any_flipped_bit_is_tampered() {
        let d = sign(KEY, NOW, 42, b"x:1|c");
        let mut v = Verifier::new(KEY, DRIFT);
        for byte in 0..d.len() {
            for bit in 0..8 {
                let mut bad = d.clone();
                bad[byte] ^= 1 << bit;
                assert_eq!(
                    v.verify(&bad, NOW),
                    Err(Reject::Tampered),
                    "byte {byte} bit {bit}"
                );
            }
        }
        assert_eq!(v.remembered(), 0);
        // Nothing forged was recorded, so the genuine packet still goes through.
        assert!(v.verify(&d, NOW).is_ok());
    }

    #[test]
    fn wrong_key_is_tampered() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(b"tlm-secure-test-key\n", NOW, 1, b"x:1|c");
        assert_eq!(v.verify(&d, NOW), Err(Reject::Tampered));
    }

    #[test]
    fn same_datagram_twice_is_replayed() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW, 1, b"x:1|c");
        assert!(v.verify(&d, NOW).is_ok());
        assert_eq!(v.verify(&d, NOW), Err(Reject::Replayed));
        assert_eq!(v.verify(&d, NOW + 3), Err(Reject::Replayed));
        assert_eq!(v.remembered(), 1);
    }

    #[test]
    fn oldest_second_accepted_once_and_replay_detected() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW - DRIFT, 1, b"x:1|c");
        assert!(v.verify(&d, NOW).is_ok());
        assert_eq!(v.verify(&d, NOW), Err(Reject::Replayed));
        // A second later it is out of the window: delayed, not accepted again.
        assert_eq!(v.verify(&d, NOW + 1), Err(Reject::Delayed));
    }

    #[test]
    fn replay_detected_across_the_whole_window() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW, 1, b"x:1|c");
        assert!(v.verify(&d, NOW).is_ok());
        for now in NOW..=NOW + DRIFT {
            assert_eq!(v.verify(&d, now), Err(Reject::Replayed), "now {now}");
        }
        assert_eq!(v.verify(&d, NOW + DRIFT + 1), Err(Reject::Delayed));
    }

    #[test]
    fn too_old_is_delayed() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW - DRIFT - 1, 1, b"x:1|c");
        assert_eq!(v.verify(&d, NOW), Err(Reject::Delayed));
        assert_eq!(v.remembered(), 0);
    }

    #[test]
    fn ahead_of_now_is_future() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW + 1, 1, b"x:1|c");
        assert_eq!(v.verify(&d, NOW), Err(Reject::Future));
        assert_eq!(v.remembered(), 0);
        // Still acceptable, once, when its second comes.
        assert!(v.verify(&d, NOW + 1).is_ok());
        assert_eq!(v.verify(&d, NOW + 1), Err(Reject::Replayed));
    }

    #[test]
    fn short_and_empty_payload_are_short() {
        let mut v = Verifier::new(KEY, DRIFT);
        let empty = sign(KEY, NOW, 1, b"");
        assert_eq!(empty.len(), HEADER_LEN);
        assert_eq!(v.verify(&empty, NOW), Err(Reject::Short));
        for len in 0..HEADER_LEN {
            assert_eq!(
                v.verify(&empty[..len], NOW),
                Err(Reject::Short),
                "len {len}"
            );
        }
        assert_eq!(v.remembered(), 0);
    }

    #[test]
    fn zero_drift_accepts_only_this_second() {
        let mut v = Verifier::new(KEY, 0);
        assert!(v.verify(&sign(KEY, NOW, 1, b"x:1|c"), NOW).is_ok());
        let old = sign(KEY, NOW - 1, 1, b"x:1|c");
        assert_eq!(v.verify(&old, NOW), Err(Reject::Delayed));
    }

    #[test]
    fn old_buckets_are_dropped() {
        let mut v = Verifier::new(KEY, DRIFT);
        for (i, ts) in (NOW - DRIFT..=NOW).enumerate() {
            let d = sign(KEY, ts, i as u32, b"x:1|c");
            assert!(v.verify(&d, NOW).is_ok());
        }
        assert_eq!(v.remembered(), DRIFT as usize + 1);
        let probe = sign(KEY, NOW, 999, b"x:1|c");
        assert_eq!(v.verify(&probe[..3], NOW + 1), Err(Reject::Short));
        assert_eq!(v.remembered(), DRIFT as usize);
        v.expire(NOW + 5);
        assert_eq!(v.remembered(), DRIFT as usize - 4);
        assert!(v.verify(&probe, NOW + DRIFT).is_ok());
        assert_eq!(v.remembered(), 2);
        v.expire(NOW + 2 * DRIFT + 1);
        assert_eq!(v.remembered(), 0);
    }

    #[test]
    fn clock_stepping_back_never_reopens_dropped_seconds() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW, 1, b"x:1|c");
        assert!(v.verify(&d, NOW).is_ok());
        v.expire(NOW + DRIFT + 1);
        assert_eq!(v.remembered(), 0);
        // Back inside the packet's window by the clock, but its record is gone.
        assert_eq!(v.verify(&d, NOW), Err(Reject::Delayed));
    }

    #[test]
    fn clock_stepping_back_keeps_newer_records() {
        let mut v = Verifier::new(KEY, DRIFT);
        let d = sign(KEY, NOW + 5, 1, b"x:1|c");
        assert!(v.verify(&d, NOW + 5).is_ok());
        let early = sign(KEY, NOW, 2, b"x:1|c");
        assert!(v.verify(&early, NOW).is_ok());
        assert_eq!(v.verify(&d, NOW + 6), Err(Reject::Replayed));
        assert_eq!(v.verify(&early, NOW + 6), Err(Reject::Replayed));
    }

    #[test]
    fn many_distinct_packets_in_one_second_all_accepted() {
        let mut v = Verifier::new(KEY, DRIFT);
        let n = 100_000u32;
        for nonce in 0..n {
            let d = sign(KEY, NOW, nonce, b"x:1|c");
            assert_eq!(v.verify(&d, NOW), Ok(&b"x:1|c"[..]), "nonce {nonce}");
        }
        assert_eq!(v.remembered(), n as usize);
        let d = sign(KEY, NOW, n / 2, b"x:1|c");
        assert_eq!(v.verify(&d, NOW), Err(Reject::Replayed));
    }

    #[test]
    fn key_file_bytes_are_kept_as_they_are() {
        let dir = std::env::temp_dir().join(format!("tlm-secure-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, b"secret\n").unwrap();
        assert_eq!(read_key_file(&path).unwrap(), b"secret\n");

        std::fs::write(&path, b"").unwrap();
        let e = read_key_file(&path).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.msg.contains("empty"), "{}", e.msg);

        let missing = dir.join("missing");
        let e = read_key_file(&missing).unwrap_err();
        assert_eq!(e.exit, Exit::NoInput);
        assert!(e.msg.contains("missing"), "{}", e.msg);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
