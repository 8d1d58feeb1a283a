//! Keeps the process small between bursts of password hashing.
//!
//! Every argon2 computation allocates ~19 MiB and frees it tens of milliseconds later. glibc's
//! malloc serves such a block with `mmap` (returned to the OS on free) only until the first one is
//! freed: then it raises its threshold to that size and keeps later blocks on the heap, where
//! the memory stays resident after one login (an idle server sat at ~57 MiB instead of ~18 MiB).
//! Fixing the threshold keeps big blocks on `mmap`, and capping the arenas stops each blocking
//! thread from growing a heap of its own.

/// Allocations at least this large always come from `mmap` and go back to the OS when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;
/// malloc arenas (glibc's default is 8 per core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 4;

/// Call once, first thing in `main`, before other threads start.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}
