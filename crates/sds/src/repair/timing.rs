//! T_req, T_resp and response groups, per dialect (stub until the bloom branch lands).

/// Which hash the SDS-R formulas use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepairHash {
    /// nim-sds: Nim's FarmHash string hash.
    Nim,
    /// `@waku/sds`: first 8 bytes of sha256.
    Spec,
}

/// T_req minus now.
pub fn t_req_offset(hash: RepairHash, participant_id: &str, message_id: &str, t_min: u64, t_max: u64) -> u64 {
    let _ = (hash, participant_id, message_id, t_max);
    t_min
}

/// T_resp minus now.
pub fn t_resp_offset(hash: RepairHash, participant_id: &str, sender_id: &str, message_id: &str, t_max: u64) -> u64 {
    let _ = (hash, message_id, t_max);
    if participant_id == sender_id { 0 } else { t_max / 2 }
}

/// Whether the participant answers requests for this message.
pub fn in_response_group(hash: RepairHash, participant_id: &str, sender_id: &str, message_id: &str, num_groups: u32) -> bool {
    let _ = (hash, participant_id, sender_id, message_id, num_groups);
    true
}
