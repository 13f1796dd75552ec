//! The change stream of a Redis collection: reading it, its head, and
//! whether entries a reader needs were trimmed or deleted.

use std::time::Duration;

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::{RedisStore, connect_manager, redis_error};
use crate::error::{IndexError, Result};
use crate::store::{Change, ChangeFeed, Position};

/// Longest `XREAD BLOCK` a feed issues.
const FEED_BLOCK_MAX: Duration = Duration::from_secs(5);

/// The change stream of a [`RedisStore`], read on a dedicated connection.
#[derive(Clone)]
pub struct RedisFeed {
    conn: ConnectionManager,
    stream: String,
}

impl RedisStore {
    /// A change feed on its own connection: a blocking `XREAD` must not hold up
    /// the commands multiplexed on the store's connection.
    pub async fn feed(&self) -> Result<RedisFeed> {
        let conn = connect_manager(&self.config, self.config.op_timeout + FEED_BLOCK_MAX).await?;
        Ok(RedisFeed {
            conn,
            stream: self.stream_key(),
        })
    }
}

fn position(id: &str) -> Result<Position> {
    Position::parse(id).ok_or_else(|| IndexError::storage(format!("bad stream id {id}")))
}

impl RedisFeed {
    /// `XINFO STREAM`, or `None` when there is no stream yet.
    async fn info(&self) -> Result<Option<std::collections::HashMap<String, redis::Value>>> {
        let info: redis::RedisResult<std::collections::HashMap<String, redis::Value>> =
            redis::cmd("XINFO")
                .arg("STREAM")
                .arg(&self.stream)
                .query_async(&mut self.conn.clone())
                .await;
        match info {
            Ok(info) => Ok(Some(info)),
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                Ok(None)
            }
            Err(e) => Err(redis_error(e)),
        }
    }
}

/// A field of `XINFO STREAM`.
fn info_field<T: redis::FromRedisValue>(
    info: &std::collections::HashMap<String, redis::Value>,
    field: &str,
) -> Result<T> {
    let v = info.get(field).ok_or_else(|| {
        IndexError::storage(format!("XINFO STREAM lacks {field}: Redis 7+ is required"))
    })?;
    redis::from_redis_value_ref(v).map_err(|e| IndexError::storage(e.to_string()))
}

impl ChangeFeed for RedisFeed {
    async fn head(&self) -> Result<Position> {
        // The last id ever generated, not the newest entry kept: a stream
        // trimmed to empty still has a head, so a reader placed there does not
        // see a gap (and resync) again and again.
        match self.info().await? {
            Some(info) => position(&info_field::<String>(&info, "last-generated-id")?),
            None => Ok(Position::default()),
        }
    }

    async fn gap_after(&self, reader: Position) -> Result<bool> {
        // No stream yet: nothing was ever trimmed.
        let Some(info) = self.info().await? else {
            return Ok(false);
        };
        // XDEL leaves a record of the newest entry it removed.
        if position(&info_field::<String>(&info, "max-deleted-entry-id")?)? > reader {
            return Ok(true);
        }
        // Trimming removes entries from the head only and never records which:
        // if nothing was ever removed, nothing the reader needs is gone.
        if info_field::<u64>(&info, "entries-added")? <= info_field::<u64>(&info, "length")? {
            return Ok(false);
        }
        let first = match info.get("first-entry") {
            Some(redis::Value::Array(entry)) => match entry.first() {
                Some(id) => {
                    let id: String = redis::from_redis_value_ref(id)
                        .map_err(|e| IndexError::storage(e.to_string()))?;
                    Some(position(&id)?)
                }
                None => None,
            },
            _ => None,
        };
        Ok(match first {
            // Entries before the oldest kept one may be gone.
            Some(first) => first > reader,
            // Trimmed to empty: gone are whatever came after the reader.
            None => position(&info_field::<String>(&info, "last-generated-id")?)? > reader,
        })
    }

    async fn read(&self, after: Position, block: Duration, count: usize) -> Result<Vec<Change>> {
        let block = block.min(FEED_BLOCK_MAX);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        // `BLOCK 0` would wait forever: a zero wait is a plain poll.
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        let reply: Option<redis::streams::StreamReadReply> = cmd
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(after.to_string())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let mut out = Vec::new();
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            let id: String = entry.get("id").ok_or_else(|| {
                IndexError::storage(format!("stream entry {} has no id", entry.id))
            })?;
            let id = Uuid::parse_str(&id).map_err(IndexError::storage)?;
            out.push(Change {
                position: position(&entry.id)?,
                id,
                version: entry.get("ver"),
            });
        }
        Ok(out)
    }
}
