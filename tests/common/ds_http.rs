//! The Delivery Service as a client reaches it over HTTP: its routes and
//! the directory's (KeyPackages uploaded by their device and claimed by the
//! adder), with `--demo-auth`'s tokens (`ACTOR/DEVICE`).
#![allow(dead_code)]

use std::net::SocketAddr;

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use polymls::delivery::Device;
use serde_json::{json, Value};

use super::ds_client::{Client, Ds, Listed, Pending, Received, Refusal};
use super::http_client::try_request;

/// An MLSMessage's header for a KeyPackage (mls10, key_package).
const KEY_PACKAGE_MESSAGE: [u8; 4] = [0, 1, 0, 5];

pub struct HttpDs {
    pub server: std::sync::RwLock<SocketAddr>,
}

impl HttpDs {
    pub fn new(server: SocketAddr) -> HttpDs {
        HttpDs {
            server: std::sync::RwLock::new(server),
        }
    }

    /// Points the client at a restarted server.
    pub fn moved(&self, server: SocketAddr) {
        *self.server.write().expect("server") = server;
    }

    fn call(
        &self,
        who: &Device,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Refusal> {
        let token = format!("{}/{}", who.actor, who.device);
        let body = body.map(|b| b.to_string().into_bytes());
        let server = *self.server.read().expect("server");
        let (status, answer) = try_request(
            server,
            method,
            &format!("/.p2/mls/v1{path}"),
            Some(&token),
            body.as_deref(),
        )
        .map_err(|e| Refusal::Other(format!("no answer: {e}")))?;
        let value = if answer.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer)
                .map_err(|e| Refusal::Other(format!("answer {status} is not JSON: {e}")))?
        };
        match status {
            200 | 204 => Ok((status, value)),
            400 => Err(Refusal::Invalid(match value["reason"].as_str() {
                Some(reason) => reason.to_string(),
                None => value.to_string(),
            })),
            404 => Err(Refusal::NotFound),
            409 => match value["epoch"].as_u64() {
                Some(epoch) => Err(Refusal::Conflict(epoch)),
                None => Err(Refusal::Exists),
            },
            other => Err(Refusal::Other(format!("{other}: {value}"))),
        }
    }

    fn group_path(group: &[u8], rest: &str) -> String {
        format!("/groups/{}{rest}", BASE64URL.encode(group))
    }

    /// The id of the group's latest accepted commit, if the server answers.
    pub fn latest_commit_id(&self, who: &Device, group: &[u8]) -> Option<[u8; 32]> {
        let (_, answer) = self
            .call(
                who,
                "GET",
                &Self::group_path(group, "/commits/latest"),
                None,
            )
            .ok()?;
        BASE64URL
            .decode(answer["id"].as_str()?)
            .ok()?
            .try_into()
            .ok()
    }

    /// Uploads a KeyPackage of `of` to the directory as its device: what
    /// makes `--demo-auth` know the device's key.
    fn upload(&self, of: &mut dyn Client) -> Vec<u8> {
        let key_package = of.key_package();
        let bare = key_package
            .strip_prefix(&KEY_PACKAGE_MESSAGE[..])
            .expect("a KeyPackage MLSMessage");
        let body = json!([{ "id": "kp", "keyPackage": BASE64.encode(bare), "lastResort": false }]);
        let device = of.device().clone();
        self.call(&device, "POST", "/keypackages", Some(body))
            .expect("KeyPackage uploaded");
        key_package
    }
}

fn b64(value: &Value, what: &str) -> Vec<u8> {
    BASE64
        .decode(value.as_str().unwrap_or_else(|| panic!("{what} missing")))
        .unwrap_or_else(|_| panic!("{what} is not base64"))
}

impl Ds for HttpDs {
    fn create(&self, who: &Device, group_info: &[u8], tree: Option<&[u8]>) -> Result<(), Refusal> {
        let mut body = json!({ "groupInfo": BASE64.encode(group_info) });
        if let Some(tree) = tree {
            body["ratchetTree"] = json!(BASE64.encode(tree));
        }
        self.call(who, "POST", "/groups", Some(body)).map(|_| ())
    }

    fn commit(&self, who: &Device, group: &[u8], pending: &Pending) -> Result<u64, Refusal> {
        let mut body = json!({ "commit": BASE64.encode(&pending.commit) });
        if let Some(welcome) = &pending.welcome {
            body["welcome"] = json!(BASE64.encode(welcome));
        }
        if let Some(info) = &pending.group_info {
            body["groupInfo"] = json!(BASE64.encode(info));
        }
        let (_, answer) = self.call(
            who,
            "POST",
            &Self::group_path(group, "/commits"),
            Some(body),
        )?;
        answer["epoch"]
            .as_u64()
            .ok_or_else(|| Refusal::Other(format!("no epoch in {answer}")))
    }

    fn propose(&self, who: &Device, group: &[u8], proposal: &[u8]) -> Result<(), Refusal> {
        let body = json!({ "proposal": BASE64.encode(proposal) });
        self.call(
            who,
            "POST",
            &Self::group_path(group, "/proposals"),
            Some(body),
        )
        .map(|_| ())
    }

    fn message(&self, who: &Device, group: &[u8], message: &[u8]) -> Result<(), Refusal> {
        let body = json!({ "message": BASE64.encode(message) });
        self.call(
            who,
            "POST",
            &Self::group_path(group, "/messages"),
            Some(body),
        )
        .map(|_| ())
    }

    fn inbox(&self, who: &Device, after: u64) -> Result<Vec<Received>, Refusal> {
        let (_, answer) = self.call(who, "GET", &format!("/inbox?after={after}"), None)?;
        Ok(answer["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|event| Received {
                seq: event["seq"].as_u64().expect("seq"),
                group: BASE64URL
                    .decode(event["group"].as_str().expect("group"))
                    .expect("group id"),
                kind: event["kind"].as_str().expect("kind").to_string(),
                message: b64(&event["message"], "message"),
            })
            .collect())
    }

    fn members(&self, who: &Device, group: &[u8]) -> Result<Vec<Listed>, Refusal> {
        let (_, answer) = self.call(who, "GET", &Self::group_path(group, "/members"), None)?;
        Ok(answer
            .as_array()
            .expect("members")
            .iter()
            .map(|member| Listed {
                leaf: member["id"].as_str().expect("id").parse().expect("leaf"),
                actor: member["identity"].as_str().expect("identity").to_string(),
                signature_key: b64(&member["signatureKey"], "signatureKey"),
            })
            .collect())
    }

    fn group_info(&self, who: &Device, group: &[u8]) -> Result<Vec<u8>, Refusal> {
        let (_, answer) = self.call(who, "GET", &Self::group_path(group, "/groupinfo"), None)?;
        Ok(b64(&answer["groupInfo"], "groupInfo"))
    }

    fn proposals(&self, who: &Device, group: &[u8]) -> Result<usize, Refusal> {
        let (_, answer) = self.call(who, "GET", &Self::group_path(group, "/proposals"), None)?;
        Ok(answer.as_array().expect("proposals").len())
    }

    fn enroll(&self, client: &mut dyn Client) {
        self.upload(client);
    }

    /// Uploaded by `of`'s device, claimed by `claimer` from the directory.
    fn key_package(&self, claimer: &Device, of: &mut dyn Client) -> Vec<u8> {
        let uploaded = self.upload(of);
        let suite = u16::from_be_bytes([uploaded[6], uploaded[7]]);
        let device = of.device().clone();
        let (_, claimed) = self
            .call(
                claimer,
                "GET",
                &format!("/keypackages/{}?ciphersuites=0x{suite:04X}", device.actor),
                None,
            )
            .expect("claim");
        let mine = claimed
            .as_array()
            .expect("claimed")
            .iter()
            .find(|c| c["device"] == device.device)
            .expect("the device's KeyPackage");
        let bare = b64(&mine["keyPackage"], "keyPackage");
        [&KEY_PACKAGE_MESSAGE[..], &bare].concat()
    }
}
