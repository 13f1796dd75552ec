//! The precisions a graph stores its vectors at.

use half::f16;

use crate::vector::{dot, dot_f16};

/// A stored vector element: how it is made, widened, saved and measured.
pub(crate) trait Element: Copy + PartialEq + Send + Sync + 'static {
    /// Bytes per element in a saved graph.
    const BYTES: usize;
    /// Rounds a component.
    fn from_f32(x: f32) -> Self;
    /// Widens a component.
    fn to_f32(self) -> f32;
    /// The inner product of an f32 query with a stored vector.
    fn dot(query: &[f32], stored: &[Self]) -> f32;
    /// Appends the little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
    /// Reads one from exactly [`Self::BYTES`] little-endian bytes.
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f16 {
    const BYTES: usize = 2;
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline]
    fn dot(query: &[f32], stored: &[Self]) -> f32 {
        dot_f16(query, stored)
    }
    fn put(self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f16::from_le_bytes([bytes[0], bytes[1]])
    }
}

impl Element for f32 {
    const BYTES: usize = 4;
    fn from_f32(x: f32) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn dot(query: &[f32], stored: &[Self]) -> f32 {
        dot(query, stored)
    }
    fn put(self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}
