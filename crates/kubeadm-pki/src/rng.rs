//! The one source of randomness: the operating system's (WASI's `random` inside a plugin).
//!
//! `rsa` and the elliptic-curve crates take a `rand_core` 0.6 RNG. Rather than pull in
//! `getrandom` 0.2 (which on `wasm32-wasip2` goes through the preview-1 adapter), this adapter
//! asks the workspace's `getrandom` 0.4, which speaks WASI preview 2 directly.

use rand_core::{CryptoRng, Error, RngCore};

/// A cryptographically secure RNG backed by `getrandom`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SysRng;

impl RngCore for SysRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The RngCore contract has no error path here; an OS without randomness cannot make keys
        // at all, and continuing with zeros would be far worse than stopping.
        if let Err(e) = getrandom::fill(dest) {
            panic!("the system random number generator failed: {e}");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        // rand_core 0.6 errors carry only a code; the custom range tells it is not an OS errno.
        getrandom::fill(dest)
            .map_err(|_| Error::from(std::num::NonZeroU32::MIN.saturating_add(Error::CUSTOM_START)))
    }
}

impl CryptoRng for SysRng {}

/// A certificate serial number, uniform in [1, 2^63 - 1) as kubeadm draws it
/// (`rand.Int(rand.Reader, new(big.Int).SetInt64(math.MaxInt64-1))` + 1).
pub fn serial() -> u64 {
    const BOUND: u64 = (1u64 << 63) - 2; // size of the range
    // Rejection sampling over the largest multiple of BOUND that fits in u64: no modulo bias.
    let zone = u64::MAX - (u64::MAX % BOUND);
    loop {
        let r = SysRng.next_u64();
        if r < zone {
            return r % BOUND + 1;
        }
    }
}
