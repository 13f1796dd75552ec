//! Reading the little-endian fields of a saved graph (usearch's framing and
//! ours): every read checks the length first, so short or damaged bytes are
//! an error, never a panic.

use crate::error::{IndexError, Result};

/// The error for a saved graph whose `what` cannot be right.
pub(crate) fn broken(what: &str) -> IndexError {
    IndexError::CorruptSnapshot(format!("saved graph: bad {what}"))
}

/// Reads fields off the front of the bytes it holds.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    /// Bytes not read yet.
    pub(crate) fn left(&self) -> usize {
        self.0.len()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            return Err(broken("length (truncated)"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A u64 that must fit a `usize`.
    pub(crate) fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| broken("size"))
    }

    /// `n` u32 words.
    pub(crate) fn words(&mut self, n: usize) -> Result<Vec<u32>> {
        let raw = self.take(n.checked_mul(4).ok_or_else(|| broken("size"))?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}
