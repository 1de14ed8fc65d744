//! Memory allocation tuned for the large, long-lived tables of aggregation: big blocks are
//! reused instead of being mapped and unmapped for every input block, and large regions
//! are backed by transparent huge pages where the kernel allows it (`madvise` mode), so a
//! random walk over a million series costs fewer TLB misses.

use std::alloc::{GlobalAlloc, Layout, System};

/// Regions at least this large are offered huge pages.
const HUGE_MIN: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// The system allocator, with huge pages for large regions.
pub struct Tuned;

// SAFETY: every call is forwarded to `System`; `madvise` only changes how the kernel backs
// memory this process already owns, never its contents.
unsafe impl GlobalAlloc for Tuned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        advise(p, new_size);
        p
    }
}

fn advise(p: *mut u8, size: usize) {
    if p.is_null() || size < HUGE_MIN {
        return;
    }
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize + size) & !(HUGE_PAGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made; a failure (no THP
        // support) leaves the memory as it was.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// Keeps blocks up to 32 MiB in the heap, and freed memory there, so that buffers freed and
/// allocated again for every input block are reused rather than mapped and faulted in anew.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// One malloc arena for the whole process. Aggregation allocates its tables on decoder
/// threads and frees them on the merging thread; with an arena per thread, freed memory
/// stays in the arena that made it and peak memory grows by a third (480 against 350 MiB
/// for a million series). Its hot paths do not allocate per line, so one lock costs
/// nothing measurable. Call before any thread starts.
pub fn single_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_allocations_work() {
        let t = Tuned;
        for size in [16, 4096, HUGE_MIN, HUGE_MIN * 3 + 17] {
            let layout = Layout::from_size_align(size, 16).unwrap();
            // SAFETY: a non-zero layout; the block is written within its size and freed once.
            unsafe {
                let p = t.alloc(layout);
                assert!(!p.is_null());
                p.write_bytes(7, size);
                let q = t.realloc(p, layout, size * 2);
                assert_eq!(*q.add(size - 1), 7);
                t.dealloc(q, Layout::from_size_align(size * 2, 16).unwrap());
            }
        }
        tune_malloc();
    }
}
