//! Secret hygiene visible from outside: `Debug` never shows a secret, and
//! the CSPRNG is shareable across threads and never repeats itself.

use std::sync::Arc;

use polymls::hpke::HpkeSuite;
use polymls::{Crypto, Rand};

#[test]
fn debug_output_redacts_secrets() {
    let suite = HpkeSuite::from_ids(0x0020, 1, 1).expect("suite");
    let key_pair = suite.derive_key_pair(&[7; 32]).expect("derive");
    let private_hex = hex::encode(&*key_pair.private);
    let shown = format!("{key_pair:?}");
    assert!(!shown.contains(&private_hex) && !shown.contains(&format!("{:?}", &*key_pair.private)));

    let (_, context) = suite
        .setup_sender_with_seed(&key_pair.public, b"info", &[9; 32])
        .expect("setup");
    let shown = format!("{context:?} {:?} {:?}", Rand::default(), Crypto::default());
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.contains('['), "byte arrays in Debug output: {shown}");
}

#[test]
fn rand_is_shared_across_threads_without_repeats() {
    let rand = Arc::new(Rand::default());
    let draws: Vec<[u8; 32]> = (0..4)
        .map(|_| {
            let rand = Arc::clone(&rand);
            std::thread::spawn(move || {
                let mut out = [0u8; 32];
                rand.fill(&mut out);
                out
            })
        })
        .map(|thread| thread.join().expect("thread"))
        .collect();
    for (i, a) in draws.iter().enumerate() {
        assert_ne!(a, &[0; 32]);
        for b in &draws[i + 1..] {
            assert_ne!(a, b, "two draws repeated");
        }
    }
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    Rand::default().fill(&mut a);
    Rand::default().fill(&mut b);
    assert_ne!(a, b, "two generators share a seed");
}
