//! Regular input files mapped into memory, so decoder threads read lines where the page
//! cache holds them: no copy into a buffer on a reader thread, and each line is fetched
//! from memory once, by the thread that decodes it.
//!
//! A file that shrinks while it is mapped makes the next access past its new end raise
//! SIGBUS. `guard` turns that into a clear error and exit 74 (I/O) instead of a crash; a
//! SIGBUS anywhere else is handled as it was before.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

/// A read-only mapping of a range of a file, unmapped when dropped.
pub struct Mapping {
    ptr: *mut u8,
    /// Mapped bytes, from the page-aligned `base` of the file on.
    len: usize,
    /// File offset of the first mapped byte.
    base: u64,
    guard_slot: Option<usize>,
}

// SAFETY: the mapping is read-only and lives until drop; reading it from several threads
// is reading shared immutable memory.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

const PAGE: u64 = 4096;

impl Mapping {
    /// Maps `file` from offset `from` to `to` (its size when it was looked at). `None` when
    /// the range is empty or the kernel refuses (the caller then reads the file instead).
    pub fn of(file: &File, from: u64, to: u64, label: &str) -> Option<Arc<Mapping>> {
        let base = from - from % PAGE;
        let len = usize::try_from(to.checked_sub(base)?).ok()?;
        if to <= from || len == 0 {
            return None;
        }
        let offset = libc::off_t::try_from(base).ok()?;
        // SAFETY: a fresh read-only private mapping of an open descriptor; nothing else
        // refers to the returned address yet.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        let ptr = ptr.cast::<u8>();
        let guard_slot = guard::register(ptr as usize, len, label);
        Some(Arc::new(Mapping {
            ptr,
            len,
            base,
            guard_slot,
        }))
    }

    /// The file's bytes from offset `from` to `to`, both within the mapped range.
    pub fn bytes(&self, from: u64, to: u64) -> &[u8] {
        let start = usize::try_from(from - self.base).unwrap_or(usize::MAX);
        let end = usize::try_from(to - self.base).unwrap_or(usize::MAX);
        assert!(start <= end && end <= self.len, "range outside the mapping");
        // SAFETY: [start, end) lies within the live read-only mapping of `len` bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), end - start) }
    }

    /// The file offset just past the mapped range.
    pub fn end(&self) -> u64 {
        self.base + self.len as u64
    }

    /// Asks the kernel to map the pages of `from..to` now (reading them from disk if they
    /// are not cached), so the thread that reads them next does not take the faults.
    /// Advice only: a kernel without it leaves faulting to the first access.
    pub fn populate(&self, from: u64, to: u64) {
        self.advise(from, to, libc::MADV_POPULATE_READ);
    }

    /// Unmaps the pages of `from..to` from this process, which the page cache keeps: they
    /// stop counting as its memory, and a later access maps them again. Pages at either end
    /// may be shared with a neighbouring range still being read; for a read-only file
    /// mapping that only costs such a reader one more fault.
    pub fn release(&self, from: u64, to: u64) {
        self.advise(from, to, libc::MADV_DONTNEED);
    }

    fn advise(&self, from: u64, to: u64, advice: libc::c_int) {
        let start = (from.max(self.base) - self.base) & !(PAGE - 1);
        let end = (to.min(self.end()) - self.base).next_multiple_of(PAGE);
        let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
            return;
        };
        let end = end.min(self.len.next_multiple_of(PAGE as usize));
        if end > start {
            // SAFETY: a page-aligned range inside this mapping; both advices leave the
            // mapping valid and its contents those of the file.
            unsafe { libc::madvise(self.ptr.add(start).cast(), end - start, advice) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(slot) = self.guard_slot {
            guard::unregister(slot);
        }
        // SAFETY: the mapping made in `of`, unmapped once; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The SIGBUS handler for mapped inputs and the table of mappings it knows.
mod guard {
    use super::*;

    const SLOTS: usize = 16;

    struct Slot {
        start: AtomicUsize,
        len: AtomicUsize,
        message: AtomicPtr<u8>,
        message_len: AtomicUsize,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Slot = Slot {
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        message: AtomicPtr::new(std::ptr::null_mut()),
        message_len: AtomicUsize::new(0),
    };
    static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
    static INSTALL: Once = Once::new();
    static mut PREVIOUS: Option<libc::sigaction> = None;

    /// Records a mapping for the handler; `None` when the table is full (the mapping then
    /// goes without a guard message: a shrinking file ends the process as SIGBUS does).
    pub fn register(start: usize, len: usize, label: &str) -> Option<usize> {
        INSTALL.call_once(install);
        let mut text = crate::log::render_untimed(
            crate::log::Level::Error,
            "input_truncated",
            &[
                ("file", &label),
                ("reason", &"the file shrank while it was read"),
                ("exit", &(crate::error::Exit::Io as i32)),
            ],
        );
        text.push('\n');
        let bytes = text.into_bytes();
        let message = Box::leak(bytes.into_boxed_slice());
        for (i, slot) in TABLE.iter().enumerate() {
            if slot
                .start
                .compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.message_len.store(message.len(), Ordering::Release);
                slot.message.store(message.as_mut_ptr(), Ordering::Release);
                slot.len.store(len, Ordering::Release);
                return Some(i);
            }
        }
        // SAFETY: leaked just above and not published anywhere.
        drop(unsafe { Box::from_raw(message as *mut [u8]) });
        None
    }

    pub fn unregister(i: usize) {
        let slot = &TABLE[i];
        slot.len.store(0, Ordering::Release);
        let message = slot.message.swap(std::ptr::null_mut(), Ordering::AcqRel);
        let len = slot.message_len.load(Ordering::Acquire);
        slot.start.store(0, Ordering::Release);
        if !message.is_null() {
            // The handler only reads a message while the mapping it guards is live, and the
            // mapping is unmapped after this returns.
            // SAFETY: the boxed slice leaked by `register` for this slot.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(message, len)) });
        }
    }

    fn install() {
        // SAFETY: sigaction with a zeroed struct, filled in before use; the previous action
        // is kept for faults that are not ours. `PREVIOUS` is written once, here, before the
        // handler can run.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
                *std::ptr::addr_of_mut!(PREVIOUS) = Some(previous);
            }
        }
    }

    /// Async-signal-safe: reads atomics, writes to stderr, exits.
    extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
        let addr = unsafe { (*info).si_addr() } as usize;
        for slot in &TABLE {
            let start = slot.start.load(Ordering::Acquire);
            let len = slot.len.load(Ordering::Acquire);
            if start == 0 || addr < start || addr >= start + len {
                continue;
            }
            let message = slot.message.load(Ordering::Acquire);
            let n = slot.message_len.load(Ordering::Acquire);
            // SAFETY: write(2) and _exit(2) are async-signal-safe; the message is live
            // while its slot is.
            unsafe {
                if !message.is_null() {
                    libc::write(2, message.cast(), n);
                }
                libc::_exit(crate::error::Exit::Io as i32);
            }
        }
        // Not a mapped input: put the previous action back and return, so the fault
        // happens again and is handled as it would have been.
        // SAFETY: restoring the action saved by `install`.
        unsafe {
            match *std::ptr::addr_of!(PREVIOUS) {
                Some(previous) => libc::sigaction(libc::SIGBUS, &previous, std::ptr::null_mut()),
                None => {
                    libc::signal(libc::SIGBUS, libc::SIG_DFL);
                    0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("tlm-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let f = File::open(&path).unwrap();
        (path, f)
    }

    #[test]
    fn maps_any_range_of_a_file() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let (path, f) = temp_file("ranges", &data);
        for (from, to) in [
            (0, 20_000),
            (1, 7),
            (4095, 4097),
            (8192, 20_000),
            (12_345, 19_999),
        ] {
            let m = Mapping::of(&f, from, to, "t").unwrap();
            assert_eq!(m.bytes(from, to), &data[from as usize..to as usize]);
            m.populate(from, to);
            m.release(from, to);
            // Released pages are mapped again from the page cache on the next read.
            assert_eq!(m.bytes(from, to), &data[from as usize..to as usize]);
        }
        assert!(Mapping::of(&f, 100, 100, "t").is_none());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_guard_table_frees_its_slots() {
        let (path, f) = temp_file("slots", b"0123456789\n");
        // More mappings one after another than the table has slots.
        for _ in 0..100 {
            let m = Mapping::of(&f, 0, 11, "t").unwrap();
            assert!(m.guard_slot.is_some());
        }
        std::fs::remove_file(path).unwrap();
    }
}
