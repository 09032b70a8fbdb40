//! The process allocator: glibc's malloc for everything ordinary, and a *reservation* for any
//! single request of [`RESERVE_FROM`] bytes or more.
//!
//! Why: `kafka-protocol` decodes an array by calling `Vec::with_capacity(n)` with `n` read from
//! the wire before it decodes a single element. A 32-byte frame claiming 2^32 − 1 elements asks
//! for hundreds of gigabytes; malloc refuses, and Rust *aborts* the process on a failed
//! allocation (no panic to catch). We keep the crate (the product owner's choice) and make such
//! a request harmless instead: a huge allocation is an anonymous private mapping with
//! `MAP_NORESERVE`, which costs address space only. Pages become memory when they are written,
//! and the decoder writes one element per element it actually decodes — at least one byte of
//! frame each — so a hostile count commits at most (frame bytes × element size) before the
//! decode fails on the missing bytes and the mapping is returned. The frame itself is capped
//! by `max_request_bytes` (512 KiB before SASL authentication).
//!
//! Legitimate allocations of this size do not happen in the broker (every buffer is bounded by
//! a budget far below 1 GiB); if one did, it would behave exactly like memory from malloc.
//! With `vm.overcommit_memory = 2` (strict accounting) the kernel refuses even reserved
//! mappings; the broker warns about it at start-up (see [`overcommit_is_strict`]).

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests of at least this many bytes are reserved mappings (1 GiB).
pub const RESERVE_FROM: usize = 1 << 30;

const PAGE: usize = 4096;

/// See the module documentation.
pub struct ReservingAlloc;

fn reserved(size: usize, align: usize) -> bool {
    size >= RESERVE_FROM && align <= PAGE
}

fn map_len(size: usize) -> usize {
    size.div_ceil(PAGE) * PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping has no preconditions; failure is MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len(size),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

unsafe impl GlobalAlloc for ReservingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if reserved(layout.size(), layout.align()) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if reserved(layout.size(), layout.align()) {
            // Anonymous mappings are zero-filled.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if reserved(layout.size(), layout.align()) {
            // SAFETY: `ptr` came from `map` with the same size (GlobalAlloc contract).
            unsafe { libc::munmap(ptr as *mut libc::c_void, map_len(layout.size())) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_big = reserved(layout.size(), layout.align());
        let new_big = reserved(new_size, layout.align());
        if !old_big && !new_big {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if old_big && new_big {
            // SAFETY: `ptr` is a mapping of `map_len(layout.size())` bytes.
            let p = unsafe {
                libc::mremap(
                    ptr as *mut libc::c_void,
                    map_len(layout.size()),
                    map_len(new_size),
                    libc::MREMAP_MAYMOVE,
                )
            };
            return if p == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                p as *mut u8
            };
        }
        // Crossing the threshold: allocate anew, copy, free the old block.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// True when the kernel accounts every mapping strictly (`vm.overcommit_memory = 2`), in which
/// case a hostile array count can still exhaust the commit limit.
pub fn overcommit_is_strict() -> bool {
    std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
        .map(|s| s.trim() == "2")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hostile_capacity_is_reserved_not_committed() {
        // 2^32 elements of 96 bytes: what a 32-byte Produce frame can ask of kafka-protocol.
        let v: Vec<[u8; 96]> = Vec::with_capacity(u32::MAX as usize);
        assert!(v.capacity() >= u32::MAX as usize);
        let mut v = v;
        v.push([1u8; 96]);
        assert_eq!(v[0][95], 1);
        drop(v);
        // Growing across the threshold and back keeps the contents.
        let mut w: Vec<u8> = vec![7u8; 1024];
        w.reserve(super::RESERVE_FROM);
        assert_eq!(w[1023], 7);
        w.truncate(10);
        w.shrink_to_fit();
        assert_eq!(w, vec![7u8; 10]);
    }
}
