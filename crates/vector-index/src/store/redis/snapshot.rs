//! Index snapshots in Redis: chunks of a new generation are written first,
//! then one `HSET` points the manifest at them, then the old chunks are
//! deleted, so a reader always finds a whole snapshot (or none).

use super::{RedisStore, redis_error};
use crate::error::{IndexError, Result};
use crate::store::Position;

impl RedisStore {
    /// Stores `bytes` as a new generation of chunks, then points the manifest at it.
    pub(super) async fn save_chunks(&self, bytes: Vec<u8>, position: Position) -> Result<()> {
        let mut conn = self.conn.clone();
        let chunk = self.config.snapshot_chunk_bytes.clamp(1, 64 << 20);
        let manifest = format!("{}snap", self.prefix);
        let generation: u64 = redis::cmd("INCR")
            .arg(format!("{}snapgen", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
        for (i, part) in chunks.iter().enumerate() {
            let () = redis::cmd("SET")
                .arg(format!("{manifest}:{generation}:{i}"))
                .arg(*part)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
        }
        // The manifest switches to the new chunks in one command.
        let previous: (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(&manifest)
            .arg("gen")
            .arg("chunks")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let () = redis::cmd("HSET")
            .arg(&manifest)
            .arg("gen")
            .arg(generation)
            .arg("chunks")
            .arg(chunks.len())
            .arg("bytes")
            .arg(bytes.len())
            .arg("crc")
            .arg(crc32fast::hash(&bytes))
            .arg("position")
            .arg(position.to_string())
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        self.replicate().await?;
        if let (Some(old), Some(n)) = previous {
            for i in 0..n {
                let _: i64 = redis::cmd("DEL")
                    .arg(format!("{manifest}:{old}:{i}"))
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
            }
        }
        Ok(())
    }

    /// The snapshot the manifest points at, checked against its CRC and length.
    pub(super) async fn load_chunks(&self) -> Result<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        let manifest = format!("{}snap", self.prefix);
        let (generation, chunks, bytes, crc): (
            Option<u64>,
            Option<u64>,
            Option<usize>,
            Option<u32>,
        ) = redis::cmd("HMGET")
            .arg(&manifest)
            .arg("gen")
            .arg("chunks")
            .arg("bytes")
            .arg("crc")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let (Some(generation), Some(chunks), Some(bytes), Some(crc)) =
            (generation, chunks, bytes, crc)
        else {
            return Ok(None);
        };
        // Chunks arrive in pipelined groups, the next group already requested
        // while this one is copied and hashed, so Redis and the client overlap.
        const GROUP: u64 = 8;
        let fetch = |first: u64| {
            let mut conn = self.conn.clone();
            let keys: Vec<String> = (first..chunks.min(first + GROUP))
                .map(|i| format!("{manifest}:{generation}:{i}"))
                .collect();
            tokio::spawn(async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("GET").arg(key);
                }
                let parts: Vec<Option<Vec<u8>>> =
                    pipe.query_async(&mut conn).await.map_err(redis_error)?;
                Ok::<_, IndexError>(parts)
            })
        };
        let mut out = Vec::with_capacity(bytes);
        let mut hasher = crc32fast::Hasher::new();
        let mut next = (chunks > 0).then(|| fetch(0));
        let mut first = 0;
        while let Some(pending) = next.take() {
            let parts = pending
                .await
                .map_err(|e| IndexError::storage(format!("snapshot fetch failed: {e}")))??;
            let after = first + GROUP;
            next = (after < chunks).then(|| fetch(after));
            for (i, part) in (first..).zip(parts) {
                let part = part.ok_or_else(|| {
                    IndexError::CorruptSnapshot(format!("snapshot chunk {i} is missing"))
                })?;
                hasher.update(&part);
                out.extend_from_slice(&part);
            }
            first = after;
        }
        if out.len() != bytes || hasher.finalize() != crc {
            return Err(IndexError::CorruptSnapshot(
                "snapshot chunks do not match the manifest".into(),
            ));
        }
        Ok(Some(out))
    }
}
