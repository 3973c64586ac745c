//! CPU kernels of the encoder, with the bits fixed by the arithmetic, not by the CPU.
//!
//! - [`gemm`](gemm::gemm): `C = A·B (+ bias)`, each element a chain of fused multiply-adds in
//!   `k` order, the same on every [`KernelPath`].
//! - [`gemm_i8`](gemm_i8::gemm_i8): the same product for the `int8` precision, with weights
//!   quantised per output channel and activations per token, summed exactly in `i32`.
//! - `math`: `exp`, GELU, softmax, layer norm with plain IEEE operations and fixed-lane
//!   reductions.
//! - `aligned`: buffers that start on a cache line, for packed weights and activations.
//!
//! [`KernelPath`] names the code a process runs; it changes the speed, never the result. It is
//! recorded with each build so a digest difference can be told apart from a kernel change.

/// Define `$name(path, args…)`, which runs `$body` compiled for the widest vector unit the
/// path allows.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name(path: KernelPath, $($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512($($arg: $ty),*) {
                generic($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) {
                generic($($arg),*)
            }
            match path {
                #[cfg(target_arch = "x86_64")]
                KernelPath::Avx512 if is_x86_feature_detected!("avx512f") => {
                    // SAFETY: the CPU has AVX-512F (checked just now).
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                KernelPath::Avx2Fma | KernelPath::Avx512 if is_x86_feature_detected!("avx2") => {
                    // SAFETY: the CPU has AVX2 (checked just now).
                    unsafe { avx2($($arg),*) }
                }
                _ => generic($($arg),*),
            }
        }
    };
}

pub(crate) mod aligned;
pub(crate) mod attention;
pub(crate) mod gemm;
pub(crate) mod gemm_i8;
pub(crate) mod math;
pub(crate) mod split;

use std::fmt;

/// Which matrix kernel this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelPath {
    /// Portable Rust; fused multiply-adds through `f32::mul_add`.
    Scalar,
    /// x86_64 AVX2 with FMA, 256-bit registers.
    Avx2Fma,
    /// x86_64 AVX-512F, 512-bit registers.
    Avx512,
}

impl KernelPath {
    /// The fastest path this CPU supports.
    pub fn detect() -> Self {
        Self::available().last().copied().unwrap_or(Self::Scalar)
    }

    /// Every path this CPU can run, slowest first.
    pub fn available() -> Vec<Self> {
        let mut paths = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                paths.push(Self::Avx2Fma);
            }
            if is_x86_feature_detected!("avx512f") {
                paths.push(Self::Avx512);
            }
        }
        paths
    }

    /// The name recorded in manifests: `scalar`, `avx2-fma` or `avx512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2Fma => "avx2-fma",
            Self::Avx512 => "avx512",
        }
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KernelPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "scalar" => Ok(Self::Scalar),
            "avx2-fma" => Ok(Self::Avx2Fma),
            "avx512" => Ok(Self::Avx512),
            other => Err(format!(
                "unknown kernel path `{other}` (expected scalar, avx2-fma or avx512)"
            )),
        }
    }
}
