//! The directory's HTTP routes, at polyproto-mls's base path `/.p2/mls/v1/`
//! and in the shape of its OpenAPI (v0.1.0-alpha.4), on axum (feature
//! `server`):
//!
//! - `POST /keypackages`: a JSON array of `{"id", "keyPackage": base64 of
//!   the TLS-encoded KeyPackage, "lastResort": bool}` for the caller's
//!   actor and device. 200 when every one is stored; 400 with
//!   `[{"id", "reason"}]` for the refused ones (the others are stored);
//!   413 over the body size or count limit.
//! - `GET /keypackages/{fid}?ciphersuites=0x0001&ciphersuites=0xF110`:
//!   claims one KeyPackage per device of `fid`, in the caller's order of
//!   preference (each a hex code point or the suite's name; repeated or
//!   comma-separated); `versions` must allow `1.0` if given. 200 with
//!   `[{"device", "keyPackage"}]`, 204 when none is available, 404 for an
//!   actor the directory does not know. The OpenAPI's `KeyPackage` model is
//!   a JSON object that cannot be verified; these routes carry the
//!   TLS-encoded KeyPackage instead, whose signatures a client can check.
//!   `extensions` (code points in hex or decimal, or RFC 9420's names such
//!   as `last_resort`) is an allowlist: only KeyPackages all of whose
//!   extensions, their own and their leaf node's, are listed are handed
//!   out; without it, any.
//! - `GET /keypackages` (an extension of the spec): the caller's own stock,
//!   per device and suite, with what it should upload.
//!
//! Authentication stays the server's: an [`Authenticator`] maps the bearer
//! token to an actor and device; a request without one that maps is 401.
//! Directory calls block on disk, so they run on tokio's blocking pool,
//! never on the runtime's threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{Backend, Credential, Directory, IdentityCheck, LastResort, Signal, Upload, Wanted};
use crate::suite::CIPHER_SUITES;

/// Maps a request's bearer token to the (actor, device) it acts as.
pub trait Authenticator: Send + Sync + 'static {
    /// The actor and device `token` authenticates, if any.
    fn authenticate(&self, token: &str) -> Option<(String, String)>;
}

/// Limits on one upload.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// The most KeyPackages in one upload.
    pub max_key_packages: usize,
}

impl Default for Limits {
    /// 1 MiB and 100 KeyPackages (an X-Wing KeyPackage is about 3.6 KB in
    /// base64).
    fn default() -> Self {
        Limits {
            max_body: 1 << 20,
            max_key_packages: 100,
        }
    }
}

struct Service<B: Backend> {
    directory: Arc<Directory<B>>,
    authenticator: Arc<dyn Authenticator>,
    limits: Limits,
}

/// The routes over `directory`, authenticated by `authenticator`.
pub fn router<B: Backend + 'static>(
    directory: Arc<Directory<B>>,
    authenticator: Arc<dyn Authenticator>,
    limits: Limits,
) -> Router {
    let service = Arc::new(Service {
        directory,
        authenticator,
        limits,
    });
    Router::new()
        .route(
            "/.p2/mls/v1/keypackages",
            get(own_stock::<B>).post(upload::<B>),
        )
        .route("/.p2/mls/v1/keypackages/{fid}", get(claim::<B>))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .with_state(service)
}

/// An upload item, as the body carries it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadItem {
    id: String,
    key_package: String,
    #[serde(default)]
    last_resort: bool,
}

#[derive(Serialize)]
struct Refused {
    id: String,
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimedItem {
    device: String,
    key_package: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StockItem {
    device: String,
    ciphersuite: String,
    regular: usize,
    last_resort: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OwnStock {
    stock: Vec<StockItem>,
    /// "lowStock", "lastResortUsed" or "lastResortMissing", per device and
    /// suite: what polyproto's `LOW_KEY_PACKAGES` asks for.
    needs: Vec<NeedItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NeedItem {
    device: String,
    ciphersuite: String,
    need: &'static str,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn code_point(suite: u16) -> String {
    format!("0x{suite:04X}")
}

/// A directory call that failed: 503 when the database is unavailable (the
/// client may retry), 500 otherwise, with the error's message (which
/// carries no KeyPackage and no secret).
struct Failed(StatusCode, String);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl From<super::DirectoryError> for Failed {
    fn from(e: super::DirectoryError) -> Self {
        let status = match e {
            super::DirectoryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failed(status, e.to_string())
    }
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
}

impl<B: Backend + 'static> Service<B> {
    /// The actor and device the request's bearer token authenticates.
    fn caller(&self, headers: &HeaderMap) -> Option<(String, String)> {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .and_then(|token| self.authenticator.authenticate(token))
    }

    /// Runs a blocking directory call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&Directory<B>) -> Result<T, super::DirectoryError> + Send + 'static,
    ) -> Result<T, Failed> {
        let service = Arc::clone(self);
        match tokio::task::spawn_blocking(move || call(&service.directory)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(Failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "directory call failed".into(),
            )),
        }
    }
}

async fn upload<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some((actor, device)) = service.caller(&headers) else {
        return unauthorized();
    };
    let items: Vec<UploadItem> = match serde_json::from_slice(&body) {
        Ok(items) => items,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    if items.len() > service.limits.max_key_packages {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("more than {} KeyPackages", service.limits.max_key_packages),
        );
    }
    let mut refused = Vec::new();
    let mut uploads = Vec::with_capacity(items.len());
    for item in items {
        match BASE64.decode(&item.key_package) {
            Ok(key_package) => uploads.push(Upload {
                id: item.id,
                key_package,
                last_resort: item.last_resort,
            }),
            Err(_) => refused.push(Refused {
                id: item.id,
                reason: "keyPackage is not base64".into(),
            }),
        }
    }
    let verdicts = match service
        .blocking(move |directory| directory.publish(&actor, &device, &uploads))
        .await
    {
        Ok(verdicts) => verdicts,
        Err(failed) => return failed.into_response(),
    };
    refused.extend(verdicts.into_iter().filter_map(|v| {
        v.result.err().map(|reason| Refused {
            id: v.id,
            reason: reason.to_string(),
        })
    }));
    if refused.is_empty() {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::BAD_REQUEST, Json(refused)).into_response()
    }
}

/// A suite of polymls's table, named by its hex code point or its name.
fn parse_suite(token: &str) -> Option<u16> {
    let token = token.trim();
    let code_point = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
        .and_then(|hex| u16::from_str_radix(hex, 16).ok());
    CIPHER_SUITES
        .iter()
        .find(|s| Some(s.code_point) == code_point || s.name == token)
        .map(|s| s.code_point)
}

/// An extension type: a code point (hex with `0x`, or decimal) or the name
/// RFC 9420 §17.3 registers for it.
fn parse_extension(token: &str) -> Option<u16> {
    let token = token.trim();
    let named = [
        ("application_id", 1),
        ("ratchet_tree", 2),
        ("required_capabilities", 3),
        ("external_pub", 4),
        ("external_senders", 5),
        ("last_resort", 10),
    ];
    if let Some(hex) = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        return u16::from_str_radix(hex, 16).ok();
    }
    token.parse().ok().or_else(|| {
        named
            .iter()
            .find(|(name, _)| *name == token)
            .map(|(_, t)| *t)
    })
}

/// The values of `name` in a query string: the parameter repeated, each
/// value also split at commas (OpenAPI's `explode: false`) unless it is
/// whole what `whole` accepts (a suite name may hold a comma).
fn query_values(query: &str, name: &str, whole: impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let values: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == name)
        .flat_map(|(_, value)| {
            if whole(&value) {
                vec![value.into_owned()]
            } else {
                value.split(',').map(str::to_string).collect()
            }
        })
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then_some(values)
}

async fn claim<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
    Path(fid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if service.caller(&headers).is_none() {
        return unauthorized();
    }
    let query = query.unwrap_or_default();
    let Some(tokens) = query_values(&query, "ciphersuites", |v| parse_suite(v).is_some()) else {
        return error(StatusCode::BAD_REQUEST, "ciphersuites is required");
    };
    let mut suites = Vec::with_capacity(tokens.len());
    for token in &tokens {
        match parse_suite(token) {
            Some(suite) => suites.push(suite),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown cipher suite {token}"),
                )
            }
        }
    }
    let extensions: Option<Vec<u16>> = match query_values(&query, "extensions", |_| false) {
        None => None,
        Some(tokens) => match tokens.iter().map(|t| parse_extension(t)).collect() {
            Some(types) => Some(types),
            None => return error(StatusCode::BAD_REQUEST, "unknown extension type"),
        },
    };
    if let Some(versions) = query_values(&query, "versions", |_| false) {
        if !versions.iter().any(|v| v == "1.0") {
            return StatusCode::NO_CONTENT.into_response();
        }
    }
    let result = service
        .blocking(move |directory| {
            if !directory.has_actor(&fid)? {
                return Ok(None);
            }
            let wanted = Wanted {
                suites: &suites,
                extensions: extensions.as_deref(),
            };
            directory.claim_wanted(&fid, wanted).map(Some)
        })
        .await;
    match result {
        Err(failed) => failed.into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown actor"),
        Ok(Some(claimed)) if claimed.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(claimed)) => Json(
            claimed
                .into_iter()
                .map(|c| ClaimedItem {
                    device: c.device,
                    key_package: BASE64.encode(&c.key_package),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
    }
}

async fn own_stock<B: Backend + 'static>(
    State(service): State<Arc<Service<B>>>,
    headers: HeaderMap,
) -> Response {
    let Some((actor, _)) = service.caller(&headers) else {
        return unauthorized();
    };
    let result = service
        .blocking(move |directory| Ok((directory.stock(&actor)?, directory.needs(&actor)?)))
        .await;
    let (stock, needs) = match result {
        Ok(found) => found,
        Err(failed) => return failed.into_response(),
    };
    let stock = stock
        .into_iter()
        .map(|s| StockItem {
            device: s.device,
            ciphersuite: code_point(s.suite),
            regular: s.regular,
            last_resort: match s.last_resort {
                LastResort::Missing => "missing",
                LastResort::Fresh => "fresh",
                LastResort::Used => "used",
            },
        })
        .collect();
    let needs = needs
        .into_iter()
        .map(|signal| {
            let (device, suite, need) = match signal {
                Signal::LowStock { device, suite, .. } => (device, suite, "lowStock"),
                Signal::LastResortUsed { device, suite, .. } => (device, suite, "lastResortUsed"),
                Signal::LastResortMissing { device, suite, .. } => {
                    (device, suite, "lastResortMissing")
                }
            };
            NeedItem {
                device,
                ciphersuite: code_point(suite),
                need,
            }
        })
        .collect();
    Json(OwnStock { stock, needs }).into_response()
}

/// For trials and tests only: `Authorization: Bearer ACTOR/DEVICE`
/// authenticates anyone as anyone, and the identity hook accepts a basic
/// credential whose identity is ACTOR's UTF-8 bytes, trusting the first
/// signature key each device uses (in memory: a restart forgets it). As the
/// Delivery Service's [`Identities`](crate::delivery::Identities), a leaf
/// belongs to the device that first used its signature key, so a device
/// uploads a KeyPackage before it creates or joins a group.
#[derive(Default)]
pub struct DemoAuth {
    first_keys: Mutex<HashMap<(String, String), Vec<u8>>>,
    /// Where first keys are appended, if they outlive the process.
    log: Option<Mutex<std::fs::File>>,
}

impl DemoAuth {
    /// The demo, remembering each device's first key in the file at `path`
    /// (created if missing) across restarts.
    pub fn remembering(path: impl AsRef<std::path::Path>) -> std::io::Result<DemoAuth> {
        use std::io::{BufRead, BufReader};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut first_keys = HashMap::new();
        for line in BufReader::new(&file).lines() {
            let line = line?;
            let fields: Option<Vec<Vec<u8>>> = line
                .split(' ')
                .map(|field| BASE64.decode(field).ok())
                .collect();
            // A line cut short by a crash is the last one, and its key was
            // never trusted.
            let Some([actor, device, key]) = fields.and_then(|f| <[Vec<u8>; 3]>::try_from(f).ok())
            else {
                continue;
            };
            if let (Ok(actor), Ok(device)) = (String::from_utf8(actor), String::from_utf8(device)) {
                first_keys.entry((actor, device)).or_insert(key);
            }
        }
        Ok(DemoAuth {
            first_keys: Mutex::new(first_keys),
            log: Some(Mutex::new(file)),
        })
    }

    /// The device of `actor` whose first signature key is `signature_key`.
    #[cfg(feature = "delivery")]
    pub(crate) fn device_with_key(&self, actor: &str, signature_key: &[u8]) -> Option<String> {
        self.first_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|((a, _), key)| a == actor && key.as_slice() == signature_key)
            .map(|((_, device), _)| device.clone())
    }

    /// Appends a first key to the log, synced: false if it could not be
    /// written (the key is then not trusted).
    fn remember(&self, actor: &str, device: &str, key: &[u8]) -> bool {
        use std::io::Write;
        let Some(log) = &self.log else {
            return true;
        };
        let line = format!(
            "{} {} {}\n",
            BASE64.encode(actor),
            BASE64.encode(device),
            BASE64.encode(key)
        );
        let mut file = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(line.as_bytes()).is_ok() && file.sync_data().is_ok()
    }
}

impl Authenticator for DemoAuth {
    fn authenticate(&self, token: &str) -> Option<(String, String)> {
        let (actor, device) = token.split_once('/')?;
        (!actor.is_empty() && !device.is_empty()).then(|| (actor.to_string(), device.to_string()))
    }
}

impl IdentityCheck for DemoAuth {
    fn accepts(
        &self,
        actor: &str,
        device: &str,
        credential: &Credential,
        signature_key: &[u8],
    ) -> bool {
        let Credential::Basic(identity) = credential else {
            return false;
        };
        if identity != actor.as_bytes() {
            return false;
        }
        let mut keys = self
            .first_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = (actor.to_string(), device.to_string());
        if let Some(key) = keys.get(&name) {
            return key == signature_key;
        }
        if !self.remember(actor, device, signature_key) {
            return false;
        }
        keys.insert(name, signature_key.to_vec());
        true
    }
}
