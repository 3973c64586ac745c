//! The AMX kernel of the integer products: `tdpbusd` on 16 × 16 tiles of `i32`, 64 products
//! summed per element and instruction, about sixteen times the multiply-adds a cycle of
//! `vpdpbusd`.
//!
//! The sums are the same integers as every other path's (exact `i32` arithmetic: |sum| is at
//! most 255·127·k, below 2^31 for every `k` the encoder allows, `MAX_INT8_STEPS`), so choosing
//! AMX changes no bit of any vector. It serves only products whose `k` is a multiple of 64
//! (one tile row of bytes); others take the VNNI kernel.
//!
//! Linux hands AMX state to a process only after it asks (`arch_prctl(ARCH_REQ_XCOMP_PERM)`);
//! [`available`] asks once, and the kernel is used only if the CPU has AMX-TILE and AMX-INT8
//! and the kernel granted the request.

// The tile instructions have no stable intrinsics: they are written as inline assembly, whose
// every address `block` bounds first.
#![allow(unsafe_code)]

use std::arch::asm;
use std::arch::x86_64::__cpuid_count;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// Rows and columns of the register block: 2 × 2 tiles of 16 × 16 `i32`.
pub(super) const ROWS: usize = 32;

/// Columns of a packed panel (the caller's `NR`), as the tile strides assume.
pub(super) const PANEL_COLUMNS: usize = 32;

/// Bytes of a tile row: 16 `i32` of `C`, 64 `u8` of `A` (64 steps of `k`), or one group of
/// four steps for 16 columns of `B`.
const TILE_ROW_BYTES: usize = 64;

/// Whether this process may run AMX: the CPU has AMX-TILE and AMX-INT8, and Linux granted the
/// tile data state. Asked once per process.
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| cpu_has_amx_int8() && request_tile_permission())
}

fn cpu_has_amx_int8() -> bool {
    // CPUID leaf 7 sub-leaf 0, EDX: bit 24 AMX-TILE, bit 25 AMX-INT8.
    let edx = __cpuid_count(7, 0).edx;
    edx & (1 << 24) != 0 && edx & (1 << 25) != 0
}

#[cfg(target_os = "linux")]
fn request_tile_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this code only records a permission for the process; it reads
    // and writes no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_permission() -> bool {
    false
}

/// The tile configuration [`with_tiles`] loads: palette 1, all eight tiles 16 rows of 64 bytes.
#[repr(C, align(64))]
struct Config([u8; 64]);

impl Config {
    const fn new() -> Self {
        let mut bytes = [0u8; 64];
        bytes[0] = 1; // palette
        let mut tile = 0;
        while tile < 8 {
            // Bytes per row (u16, little-endian) at 16 + 2·tile; rows at 48 + tile.
            bytes[16 + 2 * tile] = TILE_ROW_BYTES as u8;
            bytes[48 + tile] = 16;
            tile += 1;
        }
        Self(bytes)
    }
}

static CONFIG: Config = Config::new();

thread_local! {
    /// How many [`with_tiles`] calls are running on this thread: the outermost configures the
    /// tiles and releases them.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Proof that this thread's tiles are configured: only [`with_tiles`] makes one, and only
/// lends it (not `Send` or `Sync`, so it stays on the thread).
pub(super) struct Tiles(PhantomData<*const ()>);

/// Run `f` with this thread's tiles configured (by the outermost call on the thread, which
/// also releases them when it ends, panicking or not, so that context switches save no tile
/// data afterwards). Panics unless [`available`].
pub(super) fn with_tiles<T>(f: impl FnOnce(&Tiles) -> T) -> T {
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            let depth = DEPTH.get() - 1;
            DEPTH.set(depth);
            if depth == 0 {
                // SAFETY: the tiles were configured by the outermost `with_tiles`, which is
                // ending; no `Tiles` outlives it.
                unsafe { asm!("tilerelease", options(nostack, nomem)) };
            }
        }
    }
    assert!(available(), "AMX is not available to this process");
    if DEPTH.get() == 0 {
        // SAFETY: AMX is available (asserted); `CONFIG` is a valid palette-1 configuration.
        unsafe {
            asm!(
                "ldtilecfg [{}]",
                in(reg) CONFIG.0.as_ptr(),
                out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
                out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
                options(nostack, readonly)
            );
        }
    }
    DEPTH.set(DEPTH.get() + 1);
    let _release = Release;
    f(&Tiles(PhantomData))
}

impl Tiles {
    /// `out[r][c] = Σ_p a[r·k4 + p] · w(p, c)` for the [`ROWS`] rows of `a` (`u8`, row stride
    /// `k4`) and the [`PANEL_COLUMNS`] columns of `panel` (groups of four steps, each 32
    /// columns × 4 bytes: the VNNI layout, which a B tile reads at a stride of 128 bytes).
    ///
    /// One assembly block zeroes, accumulates and stores, declaring every tile register it
    /// writes: no tile data lives between blocks.
    pub(super) fn block(
        &self,
        a: &[u8],
        k4: usize,
        panel: &[i8],
        out: &mut [[i32; PANEL_COLUMNS]; ROWS],
    ) {
        assert!(k4 > 0 && k4.is_multiple_of(TILE_ROW_BYTES));
        assert!(a.len() >= ROWS * k4 && panel.len() >= k4 * PANEL_COLUMNS);
        let row_bytes = PANEL_COLUMNS * 4;
        let a_bottom = a[16 * k4..].as_ptr();
        let out_bottom = out[16..].as_mut_ptr().cast::<u8>();
        // SAFETY: the tiles are configured (`self` exists only inside `with_tiles`). Reads:
        // step block t (of k4 / 64) reads A bytes [t·64, t·64 + 64) of rows 0..32 (rows 16..
        // from `a_bottom`), all below 32·k4 <= a.len(), and B groups [16t, 16t + 16) of the
        // panel, both 64-byte halves at a stride of 128, all below k4·32 <= panel.len()
        // (asserted). Writes: 32 rows of 128 bytes, `out` exactly.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "2:",
                "tileloadd tmm4, [{a} + {lda}*1]",
                "tileloadd tmm5, [{a_bottom} + {lda}*1]",
                "tileloadd tmm6, [{b} + {ldb}*1]",
                "tileloadd tmm7, [{b} + {ldb}*1 + 64]",
                "tdpbusd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm4, tmm7",
                "tdpbusd tmm2, tmm5, tmm6",
                "tdpbusd tmm3, tmm5, tmm7",
                "add {a}, 64",
                "add {a_bottom}, 64",
                "add {b}, {b_step}",
                "dec {steps}",
                "jnz 2b",
                "tilestored [{out} + {ldb}*1], tmm0",
                "tilestored [{out} + {ldb}*1 + 64], tmm1",
                "tilestored [{out_bottom} + {ldb}*1], tmm2",
                "tilestored [{out_bottom} + {ldb}*1 + 64], tmm3",
                a = inout(reg) a.as_ptr() => _,
                a_bottom = inout(reg) a_bottom => _,
                b = inout(reg) panel.as_ptr() => _,
                steps = inout(reg) k4 / TILE_ROW_BYTES => _,
                lda = in(reg) k4,
                ldb = in(reg) row_bytes,
                b_step = const 16 * PANEL_COLUMNS * 4,
                out = in(reg) out.as_mut_ptr(),
                out_bottom = in(reg) out_bottom,
                out("tmm0") _,
                out("tmm1") _,
                out("tmm2") _,
                out("tmm3") _,
                out("tmm4") _,
                out("tmm5") _,
                out("tmm6") _,
                out("tmm7") _,
                options(nostack)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner `with_tiles` leaves the outer one's tiles configured (a released tile would
    /// fault the outer `block`), and `block` sums 64 steps of 1 · 1 per group of 64.
    #[test]
    fn nested_tiles_stay_configured() {
        if !available() {
            eprintln!("skipping: this CPU or kernel has no AMX");
            return;
        }
        let (a, panel) = (vec![1u8; ROWS * 128], vec![1i8; 128 * PANEL_COLUMNS]);
        let mut out = [[0i32; PANEL_COLUMNS]; ROWS];
        with_tiles(|outer| {
            with_tiles(|inner| inner.block(&a, 128, &panel, &mut out));
            outer.block(&a, 128, &panel, &mut out);
        });
        assert!(out.iter().flatten().all(|&x| x == 128));
        assert_eq!(DEPTH.get(), 0);
    }
}
