//! An MLS group working through the polymls provider: Alice creates a group,
//! adds Bob by Welcome, they exchange messages, Bob updates his keys.
//!
//! Run with `cargo run --release --example group_chat`.

use openmls::prelude::tls_codec::{Deserialize, Serialize};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_memory_storage::MemoryStorage;

type Provider = polymls::Provider<MemoryStorage>;
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// One client: its own provider (crypto, randomness, storage) and identity.
struct Client {
    name: &'static str,
    provider: Provider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl Client {
    fn new(name: &'static str) -> Result<Self> {
        let provider = Provider::default();
        // Signature keys come from polymls's CSPRNG.
        let scheme = SUITE.signature_algorithm();
        let (private, public) = provider.crypto().signature_key_gen(scheme)?;
        let signer = SignatureKeyPair::from_raw(scheme, private, public);
        signer.store(provider.storage())?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Ok(Client {
            name,
            provider,
            signer,
            credential,
        })
    }

    fn key_package(&self) -> Result<KeyPackage> {
        let bundle = KeyPackage::builder().build(
            SUITE,
            &self.provider,
            &self.signer,
            self.credential.clone(),
        )?;
        Ok(bundle.key_package().clone())
    }
}

/// Serializes and parses a message, as a delivery service would carry it.
fn over_the_wire(message: &MlsMessageOut) -> Result<MlsMessageIn> {
    Ok(MlsMessageIn::tls_deserialize_exact(
        message.tls_serialize_detached()?,
    )?)
}

fn receive(client: &Client, group: &mut MlsGroup, message: &MlsMessageOut) -> Result<()> {
    let message = over_the_wire(message)?.try_into_protocol_message()?;
    let processed = group.process_message(&client.provider, message)?;
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(text) => {
            println!(
                "  {} reads: {}",
                client.name,
                String::from_utf8_lossy(&text.into_bytes())
            );
        }
        ProcessedMessageContent::StagedCommitMessage(commit) => {
            group.merge_staged_commit(&client.provider, *commit)?;
            println!(
                "  {} merges a commit, now at epoch {}",
                client.name,
                group.epoch().as_u64()
            );
        }
        _ => println!("  {} receives a proposal", client.name),
    }
    Ok(())
}

fn main() -> Result<()> {
    println!("polymls provider, suite {SUITE:?}");
    let alice = Client::new("alice")?;
    let bob = Client::new("bob")?;

    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .build();
    let mut alice_group = MlsGroup::new(
        &alice.provider,
        &alice.signer,
        &config,
        alice.credential.clone(),
    )?;
    println!("alice creates the group");

    let (_commit, welcome, _) =
        alice_group.add_members(&alice.provider, &alice.signer, &[bob.key_package()?])?;
    alice_group.merge_pending_commit(&alice.provider)?;
    let MlsMessageBodyIn::Welcome(welcome) = over_the_wire(&welcome)?.extract() else {
        return Err("expected a Welcome".into());
    };
    let mut bob_group =
        StagedWelcome::new_from_welcome(&bob.provider, config.join_config(), welcome, None)?
            .into_group(&bob.provider)?;
    println!(
        "bob joins by Welcome at epoch {}",
        bob_group.epoch().as_u64()
    );

    let hello = alice_group.create_message(&alice.provider, &alice.signer, b"hello bob")?;
    receive(&bob, &mut bob_group, &hello)?;
    let reply = bob_group.create_message(&bob.provider, &bob.signer, b"hello alice")?;
    receive(&alice, &mut alice_group, &reply)?;

    println!("bob updates his leaf keys");
    let update =
        bob_group.self_update(&bob.provider, &bob.signer, LeafNodeParameters::default())?;
    bob_group.merge_pending_commit(&bob.provider)?;
    receive(&alice, &mut alice_group, update.commit())?;

    let alice_view = alice_group.epoch_authenticator().as_slice();
    let bob_view = bob_group.epoch_authenticator().as_slice();
    if alice_view != bob_view {
        return Err("epoch authenticators differ".into());
    }
    println!(
        "both at epoch {}, epoch authenticator {}",
        alice_group.epoch().as_u64(),
        hex::encode(&alice_view[..8])
    );
    Ok(())
}
