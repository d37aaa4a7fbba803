//! The MLS interop vectors (mlswg/mls-implementations) that exercise the
//! crypto provider alone, run on polymls's `Crypto`: crypto-basics,
//! secret-tree, psk_secret, transcript-hashes, welcome, message-protection.
//! (key-schedule, treekem and passive-client-welcome run through OpenMLS in
//! `openmls_vectors.rs`.)

#[path = "common/mls_kat.rs"]
mod mls_kat;

use polymls::Crypto;

fn vector(file: &str) -> String {
    format!("{}/vectors/mls/{file}", env!("CARGO_MANIFEST_DIR"))
}

macro_rules! vector_test {
    ($name:ident, $runner:ident, $file:literal) => {
        #[test]
        fn $name() {
            mls_kat::$runner(&Crypto::default(), &vector($file)).report_and_check($file);
        }
    };
}

vector_test!(crypto_basics, run_crypto_basics, "crypto-basics.json");
vector_test!(secret_tree, run_secret_tree, "secret-tree.json");
vector_test!(psk_secret, run_psk_secret, "psk_secret.json");
vector_test!(
    transcript_hashes,
    run_transcript_hashes,
    "transcript-hashes.json"
);
vector_test!(welcome, run_welcome, "welcome.json");
vector_test!(
    message_protection,
    run_message_protection,
    "message-protection.json"
);
