//! Hints that start loading memory a walk or a scan reads next: the graph's
//! next vectors, link rows and visit marks, the 8-bit rows of an exact scan.

/// Asks the CPU to start loading every cache line that `s` spans.
#[inline(always)]
pub(crate) fn lines<T>(s: &[T]) {
    let start = s.as_ptr().cast::<u8>();
    for offset in (0..std::mem::size_of_val(s)).step_by(64) {
        // `wrapping_add` stays within the slice's bytes.
        line(start.wrapping_add(offset));
    }
}

/// Asks the CPU to start loading the cache line at `p`.
#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
