//! The error type of the crate's own cryptographic core.

use std::fmt;

/// What went wrong in a polymls primitive.
///
/// The variants say which input was at fault without echoing any of it: no
/// key, plaintext or secret ever appears in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The algorithm, KEM, KDF, AEAD or cipher suite is not offered by polymls.
    UnsupportedAlgorithm,
    /// A key, nonce, ciphertext or encapsulation has the wrong length.
    InvalidLength,
    /// A public key is not a valid encoding or not a valid group element.
    InvalidPublicKey,
    /// A private key is not a valid encoding or out of range.
    InvalidPrivateKey,
    /// A Diffie-Hellman result was all zeros (RFC 9180 §7.1.4): the peer's key
    /// was of small order.
    NonContributoryKey,
    /// Authenticated decryption failed: wrong key, tampered ciphertext or AAD.
    DecryptionFailed,
    /// A signature did not verify, or was not well formed.
    InvalidSignature,
    /// A requested output (HKDF expansion, HPKE export) is longer than the
    /// KDF allows.
    OutputTooLong,
    /// An HPKE context has used up its sequence numbers.
    MessageLimitReached,
    /// DeriveKeyPair found no valid private key (RFC 9180 §7.1.3).
    DeriveKeyPairFailed,
    /// The HPKE context was set up export-only and cannot seal or open.
    ExportOnly,
    /// The operating system's random number generator failed.
    InsufficientRandomness,
    /// HPKE PSK mode with an empty PSK or PSK id (RFC 9180 §5.1,
    /// `VerifyPSKInputs`), or a PSK shorter than 32 bytes (§9.5).
    InvalidPsk,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::UnsupportedAlgorithm => "unsupported algorithm",
            Error::InvalidLength => "input has the wrong length",
            Error::InvalidPublicKey => "invalid public key",
            Error::InvalidPrivateKey => "invalid private key",
            Error::NonContributoryKey => "Diffie-Hellman output is all zeros",
            Error::DecryptionFailed => "authenticated decryption failed",
            Error::InvalidSignature => "invalid signature",
            Error::OutputTooLong => "requested output too long",
            Error::MessageLimitReached => "HPKE sequence numbers exhausted",
            Error::DeriveKeyPairFailed => "DeriveKeyPair found no valid key",
            Error::ExportOnly => "HPKE context is export-only",
            Error::InsufficientRandomness => "operating system RNG failed",
            Error::InvalidPsk => "HPKE PSK or PSK id empty, or PSK too short",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}
