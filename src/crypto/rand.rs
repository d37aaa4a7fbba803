//! The crate's randomness: one ChaCha20 CSPRNG seeded from the OS once.

use std::sync::{Mutex, PoisonError};

use openmls_traits::random::OpenMlsRand;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

use crate::Error;

/// A thread-safe CSPRNG: ChaCha20 seeded once from the operating system.
///
/// It is not re-seeded per call: after construction no call reaches the OS.
/// Its state is overwritten when it is dropped and never shown by `Debug`.
/// It is not fork-safe: a forked child must build its own.
pub struct Rand {
    rng: Mutex<ChaCha20Rng>,
}

impl Rand {
    /// Seeds a new generator from the operating system's RNG.
    pub fn new() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut()).map_err(|_| Error::InsufficientRandomness)?;
        Ok(Rand {
            rng: Mutex::new(ChaCha20Rng::from_seed(*seed)),
        })
    }

    /// Fills `out` with random bytes.
    pub fn fill(&self, out: &mut [u8]) {
        // A panic while holding the lock cannot leave the generator in a
        // state that repeats output, so a poisoned lock is still usable.
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        rng.fill_bytes(out);
    }

    /// Runs `f` with exclusive access to the generator, for key generation
    /// APIs that take an `RngCore`.
    pub(crate) fn with_rng<T>(&self, f: impl FnOnce(&mut ChaCha20Rng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut rng)
    }
}

impl Default for Rand {
    /// # Panics
    /// If the operating system has no working RNG; use [`Rand::new`] to get
    /// an error instead.
    fn default() -> Self {
        Rand::new().expect("operating system RNG unavailable")
    }
}

impl Drop for Rand {
    fn drop(&mut self) {
        let rng = self.rng.get_mut().unwrap_or_else(PoisonError::into_inner);
        // ChaCha20Rng offers no zeroize; overwrite its key and buffered
        // output with a fixed state through a volatile write the optimizer
        // cannot drop.
        // SAFETY: `rng` is a valid, exclusively borrowed ChaCha20Rng, which
        // has no Drop glue, so overwriting it without dropping is sound.
        unsafe { std::ptr::write_volatile(rng, ChaCha20Rng::from_seed([0; 32])) };
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Rand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rand(ChaCha20, redacted)")
    }
}

/// The error of [`Rand`] through OpenMLS's trait; it cannot occur after
/// construction, but the trait requires a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandError;

impl std::fmt::Display for RandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("random number generation failed")
    }
}

impl std::error::Error for RandError {}

impl OpenMlsRand for Rand {
    type Error = RandError;

    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let mut out = [0u8; N];
        self.fill(&mut out);
        Ok(out)
    }

    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        let mut out = vec![0u8; len];
        self.fill(&mut out);
        Ok(out)
    }
}
