//! The AMX kernel of the integer products: `tdpbusd` on 16 × 16 tiles of `i32`, 64 products
//! summed per element and instruction, about sixteen times the multiply-adds a cycle of
//! `vpdpbusd`.
//!
//! The sums are the same integers as every other path's (exact `i32` arithmetic: |sum| is at
//! most 255·127·k, below 2^31 for every `k` the encoder allows, `MAX_INT8_STEPS`), so choosing
//! AMX changes no bit of any vector. It serves only products whose `k` is a multiple of 64 (one tile row of
//! bytes); others take the VNNI kernel.
//!
//! Linux hands AMX state to a process only after it asks (`arch_prctl(ARCH_REQ_XCOMP_PERM)`);
//! [`available`] asks once, and the kernel is used only if the CPU has AMX-TILE and AMX-INT8
//! and the kernel granted the request.

// The tile instructions have no stable intrinsics: they are written as inline assembly, whose
// every address the callers bound.
#![allow(unsafe_code)]

use std::arch::asm;
use std::arch::x86_64::__cpuid_count;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// Rows and columns of the register block: 2 × 2 tiles of 16 × 16 `i32`.
pub(super) const ROWS: usize = 32;

/// Columns of a packed panel (the caller's `NR`), as the tile strides assume.
const PANEL_COLUMNS: usize = 32;

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

/// The tile configuration of [`Tiles`]: palette 1, all eight tiles 16 rows of 64 bytes.
#[repr(C, align(64))]
struct Config([u8; 64]);

impl Config {
    fn new() -> Self {
        let mut bytes = [0u8; 64];
        bytes[0] = 1; // palette
        for tile in 0..8 {
            // Bytes per row (u16, little-endian) at 16 + 2·tile; rows at 48 + tile.
            bytes[16 + 2 * tile..18 + 2 * tile]
                .copy_from_slice(&(TILE_ROW_BYTES as u16).to_le_bytes());
            bytes[48 + tile] = 16;
        }
        Self(bytes)
    }
}

/// The tile registers configured on this thread, released (back to their initial, unsaved
/// state) when dropped. Not `Send`: the configuration belongs to the thread that loaded it.
pub(super) struct Tiles(PhantomData<*const ()>);

impl Tiles {
    /// Configure the tiles; `None` unless [`available`].
    pub(super) fn configure() -> Option<Self> {
        if !available() {
            return None;
        }
        let config = Config::new();
        // SAFETY: AMX is available to this process (checked above), and `config` is a valid
        // 64-byte palette-1 configuration.
        unsafe { asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly)) };
        Some(Self(PhantomData))
    }

    /// `out[r][c] = Σ_p a[r·k4 + p] · w(p, c)` for the 32 rows of `a` (`u8`, row stride `k4`)
    /// and the 32 columns of `panel` (groups of four steps, each 32 columns × 4 bytes: the
    /// VNNI layout, which a B tile reads at a stride of 128 bytes).
    pub(super) fn block(&mut self, a: &[u8], k4: usize, panel: &[i8], out: &mut [[i32; 32]; 32]) {
        assert!(k4 > 0 && k4.is_multiple_of(TILE_ROW_BYTES));
        assert!(a.len() >= ROWS * k4 && panel.len() >= k4 * PANEL_COLUMNS);
        let (a, panel, out) = (a.as_ptr(), panel.as_ptr(), out.as_mut_ptr().cast::<u8>());
        let c_stride = PANEL_COLUMNS * 4;
        let b_stride = PANEL_COLUMNS * 4;
        // SAFETY: the tiles are configured (`self` exists); the asserts bound every read: step
        // block t reads A bytes [t·64, t·64 + 64) of rows 0..32 and B groups [16t, 16t + 16)
        // of the panel (both column halves); `out` is 32 rows of 128 bytes.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for t in 0..k4 / TILE_ROW_BYTES {
                let a_top = a.add(t * TILE_ROW_BYTES);
                let a_bottom = a_top.add(16 * k4);
                let b_left = panel.add(t * 16 * b_stride);
                let b_right = b_left.add(TILE_ROW_BYTES);
                asm!(
                    "tileloadd tmm4, [{a_top} + {lda}*1]",
                    "tileloadd tmm5, [{a_bottom} + {lda}*1]",
                    "tileloadd tmm6, [{b_left} + {ldb}*1]",
                    "tileloadd tmm7, [{b_right} + {ldb}*1]",
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "tdpbusd tmm2, tmm5, tmm6",
                    "tdpbusd tmm3, tmm5, tmm7",
                    a_top = in(reg) a_top,
                    a_bottom = in(reg) a_bottom,
                    b_left = in(reg) b_left,
                    b_right = in(reg) b_right,
                    lda = in(reg) k4,
                    ldb = in(reg) b_stride,
                    options(nostack, readonly)
                );
            }
            let bottom = out.add(16 * c_stride);
            asm!(
                "tilestored [{top} + {ldc}*1], tmm0",
                "tilestored [{top_right} + {ldc}*1], tmm1",
                "tilestored [{bottom} + {ldc}*1], tmm2",
                "tilestored [{bottom_right} + {ldc}*1], tmm3",
                top = in(reg) out,
                top_right = in(reg) out.add(TILE_ROW_BYTES),
                bottom = in(reg) bottom,
                bottom_right = in(reg) bottom.add(TILE_ROW_BYTES),
                ldc = in(reg) c_stride,
                options(nostack)
            );
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `configure`; releasing returns them to their
        // initial state, so context switches no longer save 8 KiB of tile data.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}
