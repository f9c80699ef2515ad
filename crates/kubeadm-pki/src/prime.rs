//! RSA key generation: random primes found with a wide sieve and Miller-Rabin rounds with random
//! bases.
//!
//! `rsa` 0.9's own generator (`RandPrime`) rules out candidates divisible by the 15 odd primes up
//! to 53 only, so about 100 composites per 1024-bit prime reach a full modular exponentiation;
//! then it runs 21 Miller-Rabin rounds and a Lucas test on the prime. Sieving by every odd prime
//! below 2^14 leaves about 40 composites to test, and 10 rounds with random bases bound the
//! chance of taking a composite for a prime far below 2^-100 for random candidates (FIPS 186-5,
//! Appendix B.3, asks for fewer rounds at these sizes). Together this is about 2.5x fewer
//! exponentiations per key, which matters inside a plugin: `init` makes 16 keys.

use crate::PkiError;
use crate::rng::SysRng;
use num_traits::One;
use rand_core::RngCore;
use rsa::{BigUint, RsaPrivateKey};
use std::sync::OnceLock;

/// Odd primes below this bound rule candidates out before any exponentiation.
const SIEVE_BOUND: u32 = 1 << 14;
/// Odd offsets tried from one random start (a 1024-bit prime is ~355 odd numbers away on
/// average, so one window nearly always holds one).
const WINDOW: usize = 4096;
/// Miller-Rabin rounds for a candidate that passed the sieve (the first with base 2).
const ROUNDS: usize = 10;
/// kubeadm's (Go's) public exponent.
const PUBLIC_EXPONENT: u32 = 65537;

/// A new RSA key of `bits` bits (two primes, public exponent 65537).
pub fn rsa_key(bits: usize) -> Result<RsaPrivateKey, PkiError> {
    if bits < 1024 || !bits.is_multiple_of(2) {
        return Err(PkiError::KeyGeneration(format!(
            "RSA keys of {bits} bits are not supported (use 2048, 3072 or 4096)"
        )));
    }
    let e = BigUint::from(PUBLIC_EXPONENT);
    loop {
        let p = random_prime(bits / 2);
        let q = random_prime(bits / 2);
        // Primes that close would make the modulus easy to factor (FIPS 186-5 B.3.3 asks for a
        // distance of at least 2^(bits/2 - 100)); for random primes this practically never
        // happens, and the test is cheap.
        let distance = if p > q { &p - &q } else { &q - &p };
        if distance.bits() <= bits / 2 - 100 {
            continue;
        }
        // Two top bits set in each prime make the product exactly `bits` long.
        debug_assert_eq!((&p * &q).bits(), bits);
        // `from_p_q` computes d and the CRT values and validates the key.
        match RsaPrivateKey::from_p_q(p, q, e.clone()) {
            Ok(key) => return Ok(key),
            Err(_) => continue,
        }
    }
}

/// A random prime of exactly `bits` bits with its two top bits set, and `p - 1` prime to the
/// public exponent (so that the private exponent exists).
fn random_prime(bits: usize) -> BigUint {
    let primes = small_primes();
    let bytes_len = bits.div_ceil(8);
    let top_bits = bits - 8 * (bytes_len - 1); // bits used in the first byte: 1..=8
    let mut bytes = vec![0u8; bytes_len];
    let mut composite = vec![false; WINDOW];
    loop {
        SysRng.fill_bytes(&mut bytes);
        bytes[0] &= u8::MAX >> (8 - top_bits);
        if top_bits >= 2 {
            bytes[0] |= 0b11 << (top_bits - 2);
        } else {
            bytes[0] |= 1;
            bytes[1] |= 0x80;
        }
        bytes[bytes_len - 1] |= 1;
        // Mark the offsets k where start + 2k has a small factor p: 2k = -start (mod p).
        composite.fill(false);
        for &p in primes {
            let r = residue(&bytes, p);
            let half = p.div_ceil(2); // the inverse of 2 modulo p
            let mut k = ((u64::from(p - r) % u64::from(p)) * u64::from(half) % u64::from(p)) as usize;
            while k < WINDOW {
                composite[k] = true;
                k += p as usize;
            }
        }
        let start = BigUint::from_bytes_be(&bytes);
        let start_mod_e = u64::from(residue(&bytes, PUBLIC_EXPONENT));
        for (k, _) in composite.iter().enumerate().filter(|(_, c)| !**c) {
            // p - 1 divisible by e leaves no private exponent.
            if (start_mod_e + 2 * k as u64) % u64::from(PUBLIC_EXPONENT) == 1 {
                continue;
            }
            let candidate = &start + BigUint::from(2 * k as u64);
            if candidate.bits() != bits {
                break; // carried past the top: take a new start
            }
            if is_probable_prime(&candidate) {
                return candidate;
            }
        }
    }
}

/// The odd primes below [`SIEVE_BOUND`], computed once.
fn small_primes() -> &'static [u32] {
    static PRIMES: OnceLock<Vec<u32>> = OnceLock::new();
    PRIMES.get_or_init(|| {
        let n = SIEVE_BOUND as usize;
        let mut is_composite = vec![false; n];
        let mut primes = Vec::new();
        for i in 3..n {
            if i % 2 == 0 || is_composite[i] {
                continue;
            }
            primes.push(i as u32);
            let mut j = i * i;
            while j < n {
                is_composite[j] = true;
                j += i;
            }
        }
        primes
    })
}

/// A big-endian number modulo `m`, 32 bits at a time in u64 arithmetic (native in wasm too).
fn residue(bytes: &[u8], m: u32) -> u32 {
    let m = u64::from(m);
    let head = bytes.len() % 4;
    let mut r = bytes[..head]
        .iter()
        .fold(0u64, |r, &b| (r << 8 | u64::from(b)) % m);
    for chunk in bytes[head..].chunks_exact(4) {
        let word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        r = (r << 32 | u64::from(word)) % m;
    }
    r as u32
}

/// Miller-Rabin with [`ROUNDS`] bases: 2, then random ones in `[2, n-2]`.
fn is_probable_prime(n: &BigUint) -> bool {
    let one = BigUint::one();
    let n_minus_1 = n - &one;
    let Some(s) = n_minus_1.trailing_zeros() else {
        return false;
    };
    let d = &n_minus_1 >> s;
    let byte_len = n.bits().div_ceil(8);
    let span = n - BigUint::from(3u32); // bases 2..=n-2
    let mut random = vec![0u8; byte_len + 8];
    for round in 0..ROUNDS {
        let base = if round == 0 {
            BigUint::from(2u32)
        } else {
            SysRng.fill_bytes(&mut random);
            BigUint::from_bytes_be(&random) % &span + BigUint::from(2u32)
        };
        let mut x = base.modpow(&d, n);
        if x.is_one() || x == n_minus_1 {
            continue;
        }
        let mut witness = true;
        for _ in 1..s {
            x = &x * &x % n;
            if x == n_minus_1 {
                witness = false;
                break;
            }
            if x.is_one() {
                return false;
            }
        }
        if witness {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};

    #[test]
    fn residues_match_big_integer_arithmetic() {
        let n = BigUint::parse_bytes(b"123456789012345678901234567890123456789", 10).expect("number");
        for m in [3u32, 7, 65537, 16381, u32::MAX] {
            let expected = (&n % BigUint::from(m)).to_bytes_be();
            let expected = expected.iter().fold(0u64, |r, &b| r << 8 | u64::from(b)) as u32;
            assert_eq!(residue(&n.to_bytes_be(), m), expected, "mod {m}");
        }
    }

    #[test]
    fn miller_rabin_tells_primes_from_composites() {
        // 2^127 - 1 and 2^521 - 1 are Mersenne primes; their neighbours and a Carmichael number
        // (561 = 3 * 11 * 17, which fools the Fermat test) are not primes.
        let m127 = (BigUint::one() << 127) - BigUint::one();
        let m521 = (BigUint::one() << 521) - BigUint::one();
        assert!(is_probable_prime(&m127));
        assert!(is_probable_prime(&m521));
        assert!(!is_probable_prime(&(&m127 + BigUint::from(2u32))));
        assert!(!is_probable_prime(&(&m521 * &m127)));
        assert!(!is_probable_prime(&BigUint::from(561u32)));
        // A product of two large primes has no small factor: only Miller-Rabin can tell.
        let m61 = (BigUint::one() << 61) - BigUint::one();
        let m89 = (BigUint::one() << 89) - BigUint::one();
        assert!(!is_probable_prime(&(m61 * m89)));
    }

    #[test]
    fn small_primes_are_the_odd_primes_below_the_bound() {
        let primes = small_primes();
        assert_eq!(primes[..6], [3, 5, 7, 11, 13, 17]);
        assert_eq!(
            primes.len(),
            1899,
            "odd primes below 16384 (pi(16384) = 1900, minus 2)"
        );
        assert_eq!(primes.last(), Some(&16381));
    }

    #[test]
    fn keys_have_the_asked_size_and_distinct_primes() {
        for bits in [1024, 2048] {
            let key = rsa_key(bits).expect("key");
            assert_eq!(key.n().bits(), bits);
            assert_eq!(key.e(), &BigUint::from(PUBLIC_EXPONENT));
            let primes = key.primes();
            assert_eq!(primes.len(), 2);
            assert_ne!(primes[0], primes[1]);
            for p in primes {
                assert_eq!(p.bits(), bits / 2);
                assert!(is_probable_prime(p));
            }
            key.validate().expect("consistent key");
        }
        assert!(rsa_key(1000 + 1).is_err());
    }
}
