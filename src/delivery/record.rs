//! A group's record as the service stores it in its backend, in MLS's own
//! TLS presentation (mls-rs's codec): the observer's snapshot of the public
//! group state, the members with their devices and roles, the proposals of
//! the epoch as they were submitted, and the GroupInfo of the epoch for
//! external joins.

use mls_rs_codec::{MlsDecode, MlsEncode, MlsSize};

use super::{Device, Role, StorageError};

#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
pub(super) struct MemberRecord {
    pub leaf: u32,
    pub actor: String,
    pub device: String,
    pub role: u8,
    #[mls_codec(with = "mls_rs_codec::byte_vec")]
    pub signature_key: Vec<u8>,
    /// The leaf's credential, TLS-encoded: with the key, what the device
    /// was decided on.
    #[mls_codec(with = "mls_rs_codec::byte_vec")]
    pub credential: Vec<u8>,
}

impl MemberRecord {
    pub fn device(&self) -> Device {
        Device {
            actor: self.actor.clone(),
            device: self.device.clone(),
        }
    }

    pub fn is(&self, device: &Device) -> bool {
        self.actor == device.actor && self.device == device.device
    }

    pub fn role(&self) -> Role {
        if self.role == Role::Admin as u8 {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
pub(super) struct ProposalRecord {
    #[mls_codec(with = "mls_rs_codec::byte_vec")]
    pub reference: Vec<u8>,
    #[mls_codec(with = "mls_rs_codec::byte_vec")]
    pub message: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
pub(super) struct GroupRecord {
    pub suite: u16,
    /// mls-rs's `ExternalSnapshot` of the observed group.
    #[mls_codec(with = "mls_rs_codec::byte_vec")]
    pub snapshot: Vec<u8>,
    pub members: Vec<MemberRecord>,
    pub proposals: Vec<ProposalRecord>,
    /// The GroupInfo of the current epoch, if its committer uploaded one.
    #[mls_codec(with = "mls_rs_codec::byte_vec")]
    pub group_info: Vec<u8>,
}

impl GroupRecord {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        self.mls_encode_to_vec()
            .map_err(|_| StorageError::Corrupted("group record does not encode"))
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupRecord, StorageError> {
        GroupRecord::mls_decode(&mut &*bytes)
            .map_err(|_| StorageError::Corrupted("group record does not decode"))
    }

    pub fn member(&self, leaf: u32) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.leaf == leaf)
    }

    pub fn member_of(&self, device: &Device) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.is(device))
    }

    pub fn devices(&self) -> Vec<Device> {
        self.members.iter().map(MemberRecord::device).collect()
    }
}
