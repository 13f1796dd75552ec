//! Record ids derived from what a record is (a session, a policy, a job):
//! every instance computes the same id, so a lookup is one read and a
//! create races are settled by the store.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The first 16 bytes of the SHA-256 of `parts`, each followed by a NUL so
/// that `["ab", ""]` and `["a", "b"]` differ.
pub fn digest_bytes(parts: &[&str]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&h.finalize()[..16]);
    bytes
}

/// A record id derived from `parts` (a UUIDv8 of their digest).
pub fn derived_id(parts: &[&str]) -> Uuid {
    Uuid::new_v8(digest_bytes(parts))
}
