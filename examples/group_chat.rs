//! An MLS group working through the polymls provider, kept in RocksDB stores
//! across runs: the first run creates the group (Alice adds Bob by Welcome),
//! every later run reopens both stores and continues the same group with a
//! message each way and a self-update.
//!
//! Run with `cargo run --release --example group_chat` (twice, to see the
//! second run continue). The stores live in `target/polymls-example`, or in
//! the directory given as the first argument.

use std::path::{Path, PathBuf};

use openmls::prelude::tls_codec::{Deserialize, Serialize};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use polymls::Provider;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const GROUP_ID: &[u8] = b"polymls example group";

/// One client: its own provider (crypto, randomness, RocksDB store) and identity.
struct Client {
    name: &'static str,
    provider: Provider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl Client {
    /// Opens the client's store in `root/name`, creating its identity on the first run.
    fn open(root: &Path, name: &'static str) -> Result<Self> {
        let dir = root.join(name);
        let provider = Provider::open(&dir)?;
        let scheme = SUITE.signature_algorithm();
        let public_key_file = dir.join("signature.pub");
        let signer = match std::fs::read(&public_key_file) {
            Ok(public) => SignatureKeyPair::read(provider.storage(), &public, scheme)
                .ok_or("signature key missing")?,
            Err(_) => {
                // Signature keys come from polymls's CSPRNG.
                let (private, public) = provider.crypto().signature_key_gen(scheme)?;
                let signer = SignatureKeyPair::from_raw(scheme, private, public);
                signer.store(provider.storage())?;
                std::fs::write(&public_key_file, signer.public())?;
                signer
            }
        };
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

    fn load_group(&self) -> Result<Option<MlsGroup>> {
        Ok(MlsGroup::load(
            self.provider.storage(),
            &GroupId::from_slice(GROUP_ID),
        )?)
    }
}

/// Serializes and parses a message, as a delivery service would carry it.
fn over_the_wire(message: &MlsMessageOut) -> Result<MlsMessageIn> {
    Ok(MlsMessageIn::tls_deserialize_exact(
        message.tls_serialize_detached()?,
    )?)
}

/// Processes `message` in one transaction: reads an application message,
/// merges a commit.
fn receive(client: &Client, group: &mut MlsGroup, message: &MlsMessageOut) -> Result<()> {
    let message = over_the_wire(message)?.try_into_protocol_message()?;
    let text = client
        .provider
        .transaction(|p| -> Result<Option<Vec<u8>>> {
            match group.process_message(p, message)?.into_content() {
                ProcessedMessageContent::ApplicationMessage(text) => Ok(Some(text.into_bytes())),
                ProcessedMessageContent::StagedCommitMessage(commit) => {
                    group.merge_staged_commit(p, *commit)?;
                    Ok(None)
                }
                _ => Ok(None),
            }
        })?;
    match text {
        Some(text) => println!(
            "  {} reads: {}",
            client.name,
            String::from_utf8_lossy(&text)
        ),
        None => println!(
            "  {} merges a commit, now at epoch {}",
            client.name,
            group.epoch().as_u64()
        ),
    }
    Ok(())
}

/// The first run: Alice creates the group and adds Bob by Welcome.
fn create(alice: &Client, bob: &Client) -> Result<(MlsGroup, MlsGroup)> {
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .build();
    let (signer, credential) = (&alice.signer, alice.credential.clone());
    let mut alice_group = alice.provider.transaction(|p| {
        MlsGroup::new_with_group_id(
            p,
            signer,
            &config,
            GroupId::from_slice(GROUP_ID),
            credential,
        )
    })?;
    println!("alice creates the group");

    let (signer, credential) = (&bob.signer, bob.credential.clone());
    let bundle = bob
        .provider
        .transaction(|p| KeyPackage::builder().build(SUITE, p, signer, credential))?;
    let welcome = alice.provider.transaction(|p| -> Result<MlsMessageOut> {
        let (_commit, welcome, _) =
            alice_group.add_members(p, &alice.signer, &[bundle.key_package().clone()])?;
        alice_group.merge_pending_commit(p)?;
        Ok(welcome)
    })?;
    let MlsMessageBodyIn::Welcome(welcome) = over_the_wire(&welcome)?.extract() else {
        return Err("expected a Welcome".into());
    };
    let bob_group = bob.provider.transaction(|p| {
        StagedWelcome::new_from_welcome(p, config.join_config(), welcome, None)?.into_group(p)
    })?;
    println!(
        "bob joins by Welcome at epoch {}",
        bob_group.epoch().as_u64()
    );
    Ok((alice_group, bob_group))
}

fn main() -> Result<()> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/polymls-example"));
    println!(
        "polymls provider, suite {SUITE:?}, stores in {}",
        root.display()
    );
    let alice = Client::open(&root, "alice")?;
    let bob = Client::open(&root, "bob")?;

    let (mut alice_group, mut bob_group) = match (alice.load_group()?, bob.load_group()?) {
        (Some(a), Some(b)) => {
            println!(
                "reopened both stores: the group continues at epoch {}",
                a.epoch().as_u64()
            );
            (a, b)
        }
        _ => create(&alice, &bob)?,
    };

    let epoch = alice_group.epoch().as_u64();
    let hello = alice.provider.transaction(|p| {
        alice_group.create_message(
            p,
            &alice.signer,
            format!("hello bob, at epoch {epoch}").as_bytes(),
        )
    })?;
    receive(&bob, &mut bob_group, &hello)?;
    let reply = bob
        .provider
        .transaction(|p| bob_group.create_message(p, &bob.signer, b"hello alice"))?;
    receive(&alice, &mut alice_group, &reply)?;

    println!("bob updates his leaf keys");
    let update = bob.provider.transaction(|p| -> Result<MlsMessageOut> {
        let bundle = bob_group.self_update(p, &bob.signer, LeafNodeParameters::default())?;
        bob_group.merge_pending_commit(p)?;
        Ok(bundle.commit().clone())
    })?;
    receive(&alice, &mut alice_group, &update)?;

    if alice_group.epoch_authenticator().as_slice() != bob_group.epoch_authenticator().as_slice() {
        return Err("epoch authenticators differ".into());
    }
    println!(
        "both at epoch {}, epoch authenticator {}; run again to continue",
        alice_group.epoch().as_u64(),
        hex::encode(&alice_group.epoch_authenticator().as_slice()[..8])
    );
    Ok(())
}
