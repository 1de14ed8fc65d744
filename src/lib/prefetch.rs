//! A hint to the CPU to start loading memory that will be read soon.

/// Starts loading the cache line at `p`; a hint only, which never faults, whatever the
/// address.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts loading the `len` bytes at `p`: every cache line they touch (a key of a hundred
/// bytes often spans three, and its kind is in its last two bytes).
#[inline(always)]
pub fn prefetch_bytes(p: *const u8, len: usize) {
    let lines = ((p as usize & 63) + len.max(1)).div_ceil(64);
    for line in 0..lines {
        prefetch(p.wrapping_add(line * 64));
    }
}

/// Starts loading the value at `p`: its first and last bytes' cache lines, which differ
/// when it straddles a line (a 40-byte entry does in two cases out of five).
#[inline(always)]
pub fn prefetch_value<T>(p: *const T) {
    let start = p.cast::<u8>();
    prefetch(start);
    prefetch(start.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}
