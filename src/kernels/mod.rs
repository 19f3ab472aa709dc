//! Vector kernels: one home for the code that depends on the instruction set.
//!
//! The instruction set is chosen **once per process** by [`isa`]: the best the CPU offers among
//! [`Isa::Avx512`], [`Isa::Avx2`] and [`Isa::Portable`], lowered (never raised) by the
//! environment variable `SEMRSM_ISA` (`portable`, `avx2` or `avx512`), read at the first call. CI
//! runs the test suite once with `SEMRSM_ISA=portable` and once with `SEMRSM_ISA=avx2`, so that
//! every path is exercised end to end on one machine. Every kernel has a portable reference body,
//! and the unit tests check that each vector body computes exactly what the reference does.

use std::sync::OnceLock;

pub mod gemm;

/// An instruction-set level, ordered from the most portable to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, any CPU.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512 F and DQ (and AVX2/FMA).
    Avx512,
}

impl Isa {
    /// The name used by `SEMRSM_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parse a `SEMRSM_ISA` value (case-insensitive); `None` when it names no level.
    pub fn parse(value: &str) -> Option<Isa> {
        match value.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Isa::Portable),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// The widest level this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
            {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// The instruction-set level every kernel uses in this process: [`Isa::detect`], lowered to
/// `SEMRSM_ISA` when that is set to a lower level (a higher or unknown value is ignored).
pub fn isa() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let best = Isa::detect();
        match std::env::var("SEMRSM_ISA")
            .ok()
            .as_deref()
            .and_then(Isa::parse)
        {
            Some(forced) => forced.min(best),
            None => best,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse_round_trips() {
        assert!(Isa::Portable < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        for level in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            assert_eq!(Isa::parse(level.name()), Some(level));
            assert_eq!(Isa::parse(&level.name().to_uppercase()), Some(level));
        }
        assert_eq!(Isa::parse("sse9"), None);
    }

    #[test]
    fn chosen_level_never_exceeds_the_cpu() {
        assert!(isa() <= Isa::detect());
        if let Some(forced) = std::env::var("SEMRSM_ISA")
            .ok()
            .as_deref()
            .and_then(Isa::parse)
        {
            assert!(isa() <= forced);
        }
    }
}
