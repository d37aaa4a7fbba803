//! The Delivery Service's HTTP routes, at polyproto-mls's base path
//! `/.p2/mls/v1/` and on the paths of its OpenAPI (v0.1.0-alpha.4), on axum
//! (features `delivery` and `server`).
//!
//! MLS messages travel as base64 (standard alphabet, padded) of their TLS
//! encoding, as the KeyPackage routes carry KeyPackages. The OpenAPI's
//! `Commit`, `Proposal` and `Welcome` models are JSON objects that nobody
//! can verify; an MLSMessage carries its own signatures. `{groupId}` is the
//! MLS group id in base64url without padding, and so is a commit's `id`
//! (SHA-256 of its MLSMessage).
//!
//! - `POST /groups` `{"groupInfo", "ratchetTree"?}` → 200 the group; 400
//!   `{"reason"}`; 409 when it exists. The caller's device must be the
//!   tree's only member.
//! - `GET /groups/{groupId}` → 200 `{"id", "epoch", "cipherSuite":
//!   "0x0001", "members"}`; 404 for a group that does not exist or of which
//!   the caller's device is not a member.
//! - `POST /groups/{groupId}/commits` `{"commit", "welcome"?, "groupInfo"?}`
//!   → 200 `{"epoch"}` (the new one); 409 `{"epoch", "commit"}` (the current
//!   epoch, the id of the commit accepted for the one submitted); 400; 404.
//! - `GET /groups/{groupId}/commits/latest` → 200 `{"epoch", "id",
//!   "commit"}` (`epoch` is the one it was accepted in); 404.
//! - `GET /groups/{groupId}/members` → 200 `[{"id": leaf index as a
//!   string, "identity": the actor, "device", "signatureKey", "role":
//!   "admin" | "member"}]`; `GET /groups/{groupId}/members/{memberId}` →
//!   one of them, or 404.
//! - `POST /groups/{groupId}/proposals` `{"proposal"}` → 204; 400; 404; 409
//!   `{"epoch"}` for another epoch. `GET` → 200 `[{"ref", "proposal"}]`.
//!
//! Extensions of the spec:
//! - `POST /groups/{groupId}/messages` `{"message"}` (a PrivateMessage) →
//!   204; 400; 404; 409 `{"epoch"}` outside the window;
//! - `GET /inbox?after=SEQ&limit=N` → 200 `{"events": [{"seq", "group",
//!   "kind": "commit" | "proposal" | "message" | "welcome", "message"}],
//!   "next"}`: the caller's device's events after `after` (those up to it
//!   are acknowledged); read on from `next`;
//! - `GET /groups/{groupId}/groupinfo` → 200 `{"epoch", "groupInfo"}`, for
//!   external joins: any authenticated caller may fetch it (who may join is
//!   the application's to decide).
//!
//! Authentication is the server's [`Authenticator`], as for the
//! directory; without a token that maps, 401. Calls block on disk and on
//! validation, so they run on tokio's blocking pool.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Backend, Credential, DeliveryError, DeliveryService, Device, GroupView, Identities, Member,
    Role, StorageError,
};
use crate::directory::http::{Authenticator, DemoAuth};

/// Limits on one request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// The most events one inbox read returns.
    pub max_events: usize,
}

impl Default for Limits {
    /// 8 MiB (a GroupInfo with the ratchet tree of a 1,000-member X-Wing
    /// group is about 2.5 MB in base64) and 1,000 events.
    fn default() -> Self {
        Limits {
            max_body: 8 << 20,
            max_events: 1000,
        }
    }
}

struct Service<B: Backend> {
    delivery: Arc<DeliveryService<B>>,
    authenticator: Arc<dyn Authenticator>,
    limits: Limits,
}

/// The routes over `delivery`, authenticated by `authenticator`.
pub fn router<B: Backend + 'static>(
    delivery: Arc<DeliveryService<B>>,
    authenticator: Arc<dyn Authenticator>,
    limits: Limits,
) -> Router {
    let service = Arc::new(Service {
        delivery,
        authenticator,
        limits,
    });
    Router::new()
        .route("/.p2/mls/v1/groups", post(create::<B>))
        .route("/.p2/mls/v1/groups/{group}", get(group::<B>))
        .route("/.p2/mls/v1/groups/{group}/commits", post(commit::<B>))
        .route(
            "/.p2/mls/v1/groups/{group}/commits/latest",
            get(latest_commit::<B>),
        )
        .route("/.p2/mls/v1/groups/{group}/members", get(members::<B>))
        .route(
            "/.p2/mls/v1/groups/{group}/members/{member}",
            get(member::<B>),
        )
        .route(
            "/.p2/mls/v1/groups/{group}/proposals",
            get(proposals::<B>).post(propose::<B>),
        )
        .route("/.p2/mls/v1/groups/{group}/messages", post(message::<B>))
        .route("/.p2/mls/v1/groups/{group}/groupinfo", get(group_info::<B>))
        .route("/.p2/mls/v1/inbox", get(inbox::<B>))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .with_state(service)
}

/// Why a request was not served: the status and the JSON body.
struct Failed(StatusCode, serde_json::Value);

fn reason(status: StatusCode, reason: impl Into<String>) -> Failed {
    Failed(status, json!({ "reason": reason.into() }))
}

impl From<DeliveryError> for Failed {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::Invalid(why) => reason(StatusCode::BAD_REQUEST, why),
            DeliveryError::NotFound => reason(StatusCode::NOT_FOUND, "no such group"),
            DeliveryError::Exists => reason(StatusCode::CONFLICT, "the group exists"),
            DeliveryError::StaleCommit { epoch, commit } => Failed(
                StatusCode::CONFLICT,
                json!({ "epoch": epoch, "commit": commit.map(|id| BASE64URL.encode(id)) }),
            ),
            DeliveryError::OtherEpoch { epoch } => {
                Failed(StatusCode::CONFLICT, json!({ "epoch": epoch }))
            }
            DeliveryError::Storage(StorageError::Unavailable(why)) => {
                reason(StatusCode::SERVICE_UNAVAILABLE, why)
            }
            DeliveryError::Storage(error) => {
                reason(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            }
        }
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

type Answer<T> = Result<T, Failed>;

fn bad(why: impl Into<String>) -> Failed {
    reason(StatusCode::BAD_REQUEST, why)
}

impl<B: Backend + 'static> Service<B> {
    /// The device the request's bearer token authenticates.
    fn caller(&self, headers: &HeaderMap) -> Answer<Device> {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .and_then(|token| self.authenticator.authenticate(token))
            .map(|(actor, device)| Device { actor, device })
            .ok_or_else(|| reason(StatusCode::UNAUTHORIZED, "a valid bearer token is required"))
    }

    /// Runs `call` on the blocking pool for the caller, on the group the
    /// path names.
    async fn in_group<T: Send + 'static>(
        self: &Arc<Self>,
        headers: &HeaderMap,
        group: &str,
        call: impl FnOnce(&DeliveryService<B>, &Device, &[u8]) -> Result<T, DeliveryError>
            + Send
            + 'static,
    ) -> Answer<T> {
        let caller = self.caller(headers)?;
        let group = group_id(group)?;
        self.blocking(move |ds| call(ds, &caller, &group)).await
    }

    /// Runs a blocking call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&DeliveryService<B>) -> Result<T, DeliveryError> + Send + 'static,
    ) -> Answer<T> {
        let service = Arc::clone(self);
        match tokio::task::spawn_blocking(move || call(&service.delivery)).await {
            Ok(result) => result.map_err(Failed::from),
            Err(_) => Err(reason(
                StatusCode::INTERNAL_SERVER_ERROR,
                "delivery call failed",
            )),
        }
    }
}

fn group_id(encoded: &str) -> Answer<Vec<u8>> {
    BASE64URL
        .decode(encoded)
        .map_err(|_| bad("groupId is not base64url without padding"))
}

fn bytes(field: &str, encoded: &str) -> Answer<Vec<u8>> {
    BASE64
        .decode(encoded)
        .map_err(|_| bad(format!("{field} is not base64")))
}

fn optional_bytes(field: &str, encoded: Option<&str>) -> Answer<Option<Vec<u8>>> {
    encoded.map(|e| bytes(field, e)).transpose()
}

fn body<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Answer<T> {
    serde_json::from_slice(raw).map_err(|e| bad(format!("body: {e}")))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberItem {
    id: String,
    identity: String,
    device: String,
    signature_key: String,
    role: &'static str,
}

fn member_item(member: Member) -> MemberItem {
    MemberItem {
        id: member.leaf.to_string(),
        identity: member.device.actor,
        device: member.device.device,
        signature_key: BASE64.encode(&member.signature_key),
        role: match member.role {
            Role::Admin => "admin",
            Role::Member => "member",
        },
    }
}

fn group_item(group: GroupView) -> serde_json::Value {
    json!({
        "id": BASE64URL.encode(&group.id),
        "epoch": group.epoch,
        "cipherSuite": format!("0x{:04X}", group.suite),
        "members": group.members.into_iter().map(member_item).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    group_info: String,
    ratchet_tree: Option<String>,
}

async fn create<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer<Response> {
    let caller = service.caller(&headers)?;
    let request: CreateBody = body(&raw)?;
    let group_info = bytes("groupInfo", &request.group_info)?;
    let tree = optional_bytes("ratchetTree", request.ratchet_tree.as_deref())?;
    let group = service
        .blocking(move |ds| ds.create_group(&caller, &group_info, tree.as_deref()))
        .await?;
    Ok(Json(group_item(group)).into_response())
}

async fn group<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer<Response> {
    let view = service
        .in_group(&headers, &group, |ds, caller, group| {
            ds.group(caller, group)
        })
        .await?;
    Ok(Json(group_item(view)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommitBody {
    commit: String,
    welcome: Option<String>,
    group_info: Option<String>,
}

async fn commit<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
    raw: axum::body::Bytes,
) -> Answer<Response> {
    let caller = service.caller(&headers)?;
    let group = group_id(&group)?;
    let request: CommitBody = body(&raw)?;
    let commit = bytes("commit", &request.commit)?;
    let welcome = optional_bytes("welcome", request.welcome.as_deref())?;
    let group_info = optional_bytes("groupInfo", request.group_info.as_deref())?;
    let epoch = service
        .blocking(move |ds| {
            ds.submit_commit(
                &caller,
                &group,
                &commit,
                welcome.as_deref(),
                group_info.as_deref(),
            )
        })
        .await?;
    Ok(Json(json!({ "epoch": epoch })).into_response())
}

async fn latest_commit<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer<Response> {
    let accepted = service
        .in_group(&headers, &group, |ds, caller, group| {
            ds.latest_commit(caller, group)
        })
        .await?;
    Ok(Json(json!({
        "epoch": accepted.epoch,
        "id": BASE64URL.encode(accepted.id),
        "commit": BASE64.encode(&accepted.message),
    }))
    .into_response())
}

async fn members<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer<Response> {
    let members = service
        .in_group(&headers, &group, |ds, caller, group| {
            ds.members(caller, group)
        })
        .await?;
    Ok(Json(members.into_iter().map(member_item).collect::<Vec<_>>()).into_response())
}

async fn member<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path((group, member)): Path<(String, String)>,
) -> Answer<Response> {
    let not_found = || reason(StatusCode::NOT_FOUND, "no such member");
    let leaf: u32 = member.parse().map_err(|_| not_found())?;
    let members = service
        .in_group(&headers, &group, |ds, caller, group| {
            ds.members(caller, group)
        })
        .await?;
    let found = members
        .into_iter()
        .find(|m| m.leaf == leaf)
        .ok_or_else(not_found)?;
    Ok(Json(member_item(found)).into_response())
}

async fn propose<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
    raw: axum::body::Bytes,
) -> Answer<Response> {
    submit_one(
        &service,
        &headers,
        &group,
        &raw,
        "proposal",
        |ds, caller, group, proposal| ds.submit_proposal(caller, group, proposal),
    )
    .await
}

/// A service call that takes the caller, the group and one message.
type Submit<B> = fn(&DeliveryService<B>, &Device, &[u8], &[u8]) -> Result<(), DeliveryError>;

/// A submission whose body is `{field: base64 MLSMessage}`, answered 204.
async fn submit_one<B: Backend + 'static>(
    service: &Arc<Service<B>>,
    headers: &HeaderMap,
    group: &str,
    raw: &[u8],
    field: &'static str,
    submit: Submit<B>,
) -> Answer<Response> {
    // Authentication before the body: 401 whatever the body holds.
    service.caller(headers)?;
    let mut fields: std::collections::HashMap<String, String> = body(raw)?;
    let encoded = fields
        .remove(field)
        .ok_or_else(|| bad(format!("body: missing field `{field}`")))?;
    if let Some(other) = fields.keys().next() {
        return Err(bad(format!("body: unknown field `{other}`")));
    }
    let message = bytes(field, &encoded)?;
    service
        .in_group(headers, group, move |ds, caller, group| {
            submit(ds, caller, group, &message)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn proposals<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer<Response> {
    let held = service
        .in_group(&headers, &group, |ds, caller, group| {
            ds.proposals(caller, group)
        })
        .await?;
    let items: Vec<_> = held
        .into_iter()
        .map(|p| {
            json!({
                "ref": BASE64.encode(&p.reference),
                "proposal": BASE64.encode(&p.message),
            })
        })
        .collect();
    Ok(Json(items).into_response())
}

async fn message<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
    raw: axum::body::Bytes,
) -> Answer<Response> {
    submit_one(
        &service,
        &headers,
        &group,
        &raw,
        "message",
        |ds, caller, group, message| ds.submit_message(caller, group, message),
    )
    .await
}

async fn group_info<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer<Response> {
    service.caller(&headers)?;
    let group = group_id(&group)?;
    let info = service.blocking(move |ds| ds.group_info(&group)).await?;
    Ok(Json(json!({
        "epoch": info.epoch,
        "groupInfo": BASE64.encode(&info.message),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct InboxQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn inbox<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<Response> {
    let caller = service.caller(&headers)?;
    let Query(query) = query.map_err(|e| bad(format!("query: {e}")))?;
    let limit = query
        .limit
        .unwrap_or(service.limits.max_events)
        .clamp(1, service.limits.max_events);
    let after = query.after;
    let inbox = service
        .blocking(move |ds| ds.inbox(&caller, after, limit))
        .await?;
    let events: Vec<_> = inbox
        .events
        .into_iter()
        .map(|event| {
            json!({
                "seq": event.seq,
                "group": BASE64URL.encode(&event.group),
                "kind": event.kind.name(),
                "message": BASE64.encode(&event.message),
            })
        })
        .collect();
    Ok(Json(json!({ "events": events, "next": inbox.next })).into_response())
}

/// The demo's devices: the device of `actor` that uploaded a KeyPackage
/// with `signature_key` first (see [`DemoAuth`]).
impl Identities for DemoAuth {
    fn device_of(&self, credential: &Credential, signature_key: &[u8]) -> Option<Device> {
        let Credential::Basic(identity) = credential else {
            return None;
        };
        let actor = std::str::from_utf8(identity).ok()?;
        self.device_with_key(actor, signature_key)
            .map(|device| Device::new(actor, device))
    }
}
