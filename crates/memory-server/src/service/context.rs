//! Context blocks: a session's recent messages and the memories most relevant
//! to a query, packed into a character budget for a model's prompt.

use super::MemoryService;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::model::{
    ContextBlock, ContextMemory, ContextRequest, MemoryFilter, Message, SearchRequest,
};
use crate::validate;

/// Budget when the request names none.
const DEFAULT_MAX_CHARS: usize = 4_000;
/// Largest budget a request may ask for.
const MAX_CHARS: usize = 200_000;
/// Memories and messages considered when the request names no number.
const DEFAULT_ITEMS: usize = 10;

impl MemoryService {
    /// Builds a context block for `req.query`; a missing session contributes nothing.
    pub async fn context(&self, who: &Principal, req: ContextRequest) -> ApiResult<ContextBlock> {
        validate::namespace(&self.limits, &req.namespace)?;
        let max_chars = req.max_chars.unwrap_or(DEFAULT_MAX_CHARS);
        if max_chars == 0 || max_chars > MAX_CHARS {
            return Err(ApiError::invalid(
                "max_chars",
                format!("max_chars must be between 1 and {MAX_CHARS}, got {max_chars}"),
            ));
        }
        let recent = req.recent_messages.unwrap_or(DEFAULT_ITEMS);
        let messages = match &req.session_id {
            Some(sid) => match self.get_session(who, &req.namespace, sid).await {
                Ok(s) => s.messages,
                Err(ApiError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        let messages: Vec<Message> = messages
            .into_iter()
            .rev()
            .take(recent)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let found = self
            .search(
                who,
                SearchRequest {
                    namespace: req.namespace.clone(),
                    query: Some(req.query.clone()),
                    filter: MemoryFilter {
                        user_id: req.user_id.clone(),
                        ..MemoryFilter::default()
                    },
                    top_k: Some(req.top_k.unwrap_or(DEFAULT_ITEMS)),
                    as_agent: req.as_agent.clone(),
                    ..SearchRequest::default()
                },
            )
            .await?;
        let memories = found
            .results
            .into_iter()
            .map(|h| ContextMemory {
                id: h.memory.id,
                score: h.score,
                text: h.memory.text,
            })
            .collect();
        Ok(pack(
            req.session_id.as_deref(),
            messages,
            memories,
            max_chars,
        ))
    }
}

/// Lays out the block: the newest messages and the best memories win the budget.
fn pack(
    session: Option<&str>,
    messages: Vec<Message>,
    memories: Vec<ContextMemory>,
    max_chars: usize,
) -> ContextBlock {
    let mut budget = Budget::new(max_chars);
    let mut truncated = false;
    let mut kept_messages = Vec::new();
    if let Some(sid) = session
        && !messages.is_empty()
        && budget.take(&format!("Recent messages (session {sid}):\n"))
    {
        // Newest first, so the budget keeps the most recent; shown oldest first.
        for m in messages.into_iter().rev() {
            if budget.fits(&message_line(&m)) {
                budget.take(&message_line(&m));
                kept_messages.push(m);
            } else {
                truncated = true;
            }
        }
        kept_messages.reverse();
    }
    let mut kept_memories = Vec::new();
    if !memories.is_empty() && budget.take("Relevant memories:\n") {
        for m in memories {
            if budget.fits(&memory_line(&m)) {
                budget.take(&memory_line(&m));
                kept_memories.push(m);
            } else {
                truncated = true;
            }
        }
    }
    let mut context = String::new();
    if let Some(sid) = session
        && !kept_messages.is_empty()
    {
        context.push_str(&format!("Recent messages (session {sid}):\n"));
        kept_messages
            .iter()
            .for_each(|m| context.push_str(&message_line(m)));
    }
    if !kept_memories.is_empty() {
        context.push_str("Relevant memories:\n");
        kept_memories
            .iter()
            .for_each(|m| context.push_str(&memory_line(m)));
    }
    ContextBlock {
        context,
        messages: kept_messages,
        memories: kept_memories,
        truncated,
    }
}

fn message_line(m: &Message) -> String {
    format!("- {}: {}\n", m.role, m.content)
}

fn memory_line(m: &ContextMemory) -> String {
    format!("- {} (score {:.2})\n", m.text, m.score)
}

/// Characters left in the block.
struct Budget(usize);

impl Budget {
    fn new(chars: usize) -> Self {
        Self(chars)
    }

    fn fits(&self, s: &str) -> bool {
        s.chars().count() <= self.0
    }

    /// Spends `s` if it fits; says whether it did.
    fn take(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if n > self.0 {
            return false;
        }
        self.0 -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn msg(content: &str) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
            agent_id: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn mem(text: &str, score: f32) -> ContextMemory {
        ContextMemory {
            id: Uuid::nil(),
            score,
            text: text.into(),
        }
    }

    #[test]
    fn everything_fits_in_a_large_budget() {
        let b = pack(
            Some("s1"),
            vec![msg("first"), msg("second")],
            vec![mem("alice likes tea", 0.9)],
            10_000,
        );
        assert_eq!(
            b.context,
            "Recent messages (session s1):\n- user: first\n- user: second\n\
             Relevant memories:\n- alice likes tea (score 0.90)\n"
        );
        assert!(!b.truncated);
        assert_eq!(b.messages.len(), 2);
    }

    #[test]
    fn a_small_budget_keeps_the_newest_messages_and_stays_within_it() {
        let header = "Recent messages (session s1):\n".chars().count();
        let one = "- user: second\n".chars().count();
        let b = pack(
            Some("s1"),
            vec![msg("first"), msg("second")],
            vec![mem("alice likes tea", 0.9)],
            header + one,
        );
        assert_eq!(b.context, "Recent messages (session s1):\n- user: second\n");
        assert!(b.truncated);
        assert!(b.context.chars().count() <= header + one);
        assert!(b.memories.is_empty());
    }

    #[test]
    fn multibyte_text_is_counted_in_characters() {
        let line = "- ünïcødé (score 0.50)\n";
        let budget = "Relevant memories:\n".chars().count() + line.chars().count();
        let b = pack(None, vec![], vec![mem("ünïcødé", 0.5)], budget);
        assert!(!b.truncated);
        assert_eq!(b.memories.len(), 1);
    }
}
