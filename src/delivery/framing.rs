//! A submission's framing, checked before any state is read: the
//! MLSMessage decodes (nothing trails it), it is a PublicMessage of the
//! expected content type for the group it is submitted to, and the Welcome
//! and GroupInfo beside a commit are what they say.

use mls_rs::group::{ContentType, Sender};
use mls_rs::{MlsMessage, MlsMessageDescription, WireFormat};

use super::{invalid, DeliveryError};

/// A handshake message's framing, checked against the group it is
/// submitted to.
pub(super) struct Handshake {
    pub message: MlsMessage,
    pub sender: Sender,
    pub epoch: u64,
}

/// A commit submission, decoded and its framing checked.
pub(super) struct CommitSubmission<'a> {
    pub handshake: Handshake,
    pub commit: &'a [u8],
    pub welcome: Option<&'a [u8]>,
    pub welcome_message: Option<MlsMessage>,
    pub group_info: Option<&'a [u8]>,
    pub info: Option<MlsMessage>,
}

impl<'a> CommitSubmission<'a> {
    pub fn decode(
        group: &[u8],
        commit: &'a [u8],
        welcome: Option<&'a [u8]>,
        group_info: Option<&'a [u8]>,
    ) -> Result<Self, DeliveryError> {
        let handshake = handshake(commit, group, ContentType::Commit)?;
        let welcome_message = welcome.map(|bytes| decode(bytes, "welcome")).transpose()?;
        if welcome_message
            .as_ref()
            .is_some_and(|w| w.wire_format() != WireFormat::Welcome)
        {
            return Err(invalid("welcome is not a Welcome"));
        }
        let info = group_info
            .map(|bytes| decode(bytes, "groupInfo"))
            .transpose()?;
        if info
            .as_ref()
            .is_some_and(|m| m.wire_format() != WireFormat::GroupInfo)
        {
            return Err(invalid("groupInfo is not a GroupInfo"));
        }
        Ok(CommitSubmission {
            handshake,
            commit,
            welcome,
            welcome_message,
            group_info,
            info,
        })
    }
}

pub(super) fn decode(bytes: &[u8], what: &str) -> Result<MlsMessage, DeliveryError> {
    MlsMessage::from_bytes(bytes).map_err(|e| invalid(format!("{what} does not decode: {e}")))
}

pub(super) fn content_name(content_type: ContentType) -> &'static str {
    match content_type {
        ContentType::Application => "an application message",
        ContentType::Proposal => "a proposal",
        ContentType::Commit => "a commit",
    }
}

/// `bytes` as a PublicMessage of `expected` content for `group`.
pub(super) fn handshake(
    bytes: &[u8],
    group: &[u8],
    expected: ContentType,
) -> Result<Handshake, DeliveryError> {
    let what = content_name(expected);
    let message = decode(bytes, what)?;
    let (group_id, epoch, content_type, sender) = match message.description() {
        MlsMessageDescription::PublicProtocolMessage {
            group_id,
            epoch_id,
            content_type,
            sender,
            ..
        } => (group_id, epoch_id, content_type, sender),
        MlsMessageDescription::PrivateProtocolMessage { content_type, .. } => {
            return Err(invalid(format!(
                "handshake messages must be PublicMessage: this is {} in a PrivateMessage",
                content_name(content_type)
            )))
        }
        _ => return Err(invalid(format!("not {what}: not an MLS PublicMessage"))),
    };
    if group_id != group {
        return Err(invalid(format!("{what} of another group")));
    }
    if content_type != expected {
        return Err(invalid(format!(
            "{} where {what} is expected",
            content_name(content_type)
        )));
    }
    Ok(Handshake {
        message,
        sender,
        epoch,
    })
}
