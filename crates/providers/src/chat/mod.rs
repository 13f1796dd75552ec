//! Chat models: one [`ChatModel`] trait over every provider.
//!
//! A request ([`ChatRequest`]) carries the conversation, the tools the model
//! may call (each with a JSON schema) and, optionally, a JSON schema the
//! answer must follow. A model answers with a stream of [`ChatEvent`]s: text
//! deltas, tool-call deltas, usage, and a finish reason. [`complete`] folds a
//! stream into one [`ChatResponse`]. Dropping the stream cancels the call
//! (the HTTP request is dropped with it).
//!
//! Providers state only their wire format ([`remote::ChatWire`]): the
//! retries, the timeout and the SSE reading are written once
//! ([`remote::RemoteChat`]).
//! - [`openai_compat`]: `chat/completions` with SSE (OpenAI, OpenRouter, vLLM,
//!   llama.cpp's server, Ollama, Gemini's OpenAI-compatible endpoint).
//! - [`gemini`]: `streamGenerateContent` on Vertex AI (a token from
//!   Application Default Credentials) or the Gemini API (an API key).
//! - [`scripted`]: rules from configuration, no network (tests, offline demos).

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ProviderError;

pub mod config;
pub mod gemini;
pub mod openai_compat;
pub mod remote;
pub mod scripted;
mod sse;

pub use config::{ChatModelConfig, ChatProvider};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// Instructions for the model.
    System,
    /// The person or application.
    User,
    /// The model.
    Assistant,
    /// A tool's result, answering one of the model's tool calls.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: ChatRole,
    /// The text (a tool's result for [`ChatRole::Tool`]).
    pub content: String,
    /// Tool calls the assistant made in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a tool result: the tool's name (Gemini matches results by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message of `role` saying `content`.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    /// The result of tool call `call` as a message.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
            name: Some(call.name.clone()),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of its arguments (an object schema).
    pub parameters: Value,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (generated where the provider has none).
    pub id: String,
    /// The tool.
    pub name: String,
    /// Its arguments as JSON text (as the model wrote it; may be invalid JSON).
    pub arguments: String,
}

/// One call to a chat model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The conversation, oldest first; system messages anywhere.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// When set, the answer must be JSON following this schema.
    pub response_schema: Option<Value>,
    /// Sampling temperature (the model's default when unset).
    pub temperature: Option<f32>,
    /// Most tokens to generate (the model's default when unset).
    pub max_tokens: Option<u32>,
}

/// Tokens a call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Both counts added.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// Why a model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer.
    Stop,
    /// It wants its tool calls run.
    ToolCalls,
    /// It reached the token limit.
    Length,
    /// A safety or content filter stopped it.
    ContentFilter,
    /// Anything else the provider said.
    Other,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// More answer text.
    TextDelta(String),
    /// More of tool call number `index` (id and name arrive once, arguments in pieces).
    ToolCallDelta {
        /// Position of the call among this answer's calls.
        index: usize,
        /// Its id, when this piece carries it.
        id: Option<String>,
        /// Its tool name, when this piece carries it.
        name: Option<String>,
        /// More of its arguments' JSON text.
        arguments: String,
    },
    /// Token counts (the last report wins).
    Usage(Usage),
    /// Why it stopped (the last event of a well-formed stream).
    Finish(FinishReason),
}

/// A streamed answer; dropping it cancels the call.
pub type ChatStream<'a> = Pin<Box<dyn Stream<Item = Result<ChatEvent, ProviderError>> + Send + 'a>>;

/// A chat model.
pub trait ChatModel: Send + Sync + 'static {
    /// `provider:model`, for logs, metrics and cost accounting.
    fn id(&self) -> &str;
    /// Streams the answer to `request`.
    fn stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a>;
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The text.
    pub text: String,
    /// The tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Tokens used.
    pub usage: Usage,
    /// Why it stopped.
    pub finish: FinishReason,
}

/// Reads `request`'s answer from `model` to the end, showing each event to
/// `on_event` first (to forward deltas as they come).
pub async fn complete(
    model: &dyn ChatModel,
    request: &ChatRequest,
    mut on_event: impl FnMut(&ChatEvent),
) -> Result<ChatResponse, ProviderError> {
    let mut stream = model.stream(request);
    let mut answer = Assembler::default();
    while let Some(event) = stream.next().await {
        let event = event?;
        on_event(&event);
        answer.push(event);
    }
    answer.finish()
}

/// Folds events into a [`ChatResponse`].
#[derive(Debug, Default)]
pub struct Assembler {
    text: String,
    calls: Vec<ToolCall>,
    usage: Usage,
    finish: Option<FinishReason>,
}

impl Assembler {
    /// Adds one event.
    pub fn push(&mut self, event: ChatEvent) {
        match event {
            ChatEvent::TextDelta(t) => self.text.push_str(&t),
            ChatEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                while self.calls.len() <= index {
                    let n = self.calls.len();
                    self.calls.push(ToolCall {
                        id: format!("call_{n}"),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let call = &mut self.calls[index];
                if let Some(id) = id.filter(|i| !i.is_empty()) {
                    call.id = id;
                }
                if let Some(name) = name {
                    call.name.push_str(&name);
                }
                call.arguments.push_str(&arguments);
            }
            ChatEvent::Usage(u) => self.usage = u,
            ChatEvent::Finish(f) => self.finish = Some(f),
        }
    }

    /// The answer; a stream that ended without a finish reason was cut short.
    pub fn finish(self) -> Result<ChatResponse, ProviderError> {
        let finish = self.finish.ok_or_else(|| {
            ProviderError::Unavailable("the answer ended without a finish reason".into())
        })?;
        if let Some(bad) = self.calls.iter().find(|c| c.name.is_empty()) {
            return Err(ProviderError::Provider(format!(
                "tool call {} has no name",
                bad.id
            )));
        }
        // Some servers say "stop" while asking for tools; the calls decide.
        let finish = if self.calls.is_empty() {
            finish
        } else {
            FinishReason::ToolCalls
        };
        Ok(ChatResponse {
            text: self.text,
            tool_calls: self.calls,
            usage: self.usage,
            finish,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_pieces_join_by_index() {
        let mut a = Assembler::default();
        for e in [
            ChatEvent::ToolCallDelta {
                index: 0,
                id: Some("c1".into()),
                name: Some("search".into()),
                arguments: "{\"q\":".into(),
            },
            ChatEvent::ToolCallDelta {
                index: 1,
                id: Some("c2".into()),
                name: Some("store".into()),
                arguments: "{}".into(),
            },
            ChatEvent::ToolCallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: "\"x\"}".into(),
            },
            ChatEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
            }),
            ChatEvent::Finish(FinishReason::Stop),
        ] {
            a.push(e);
        }
        let r = a.finish().unwrap();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, "{\"q\":\"x\"}");
        assert_eq!(r.tool_calls[1].name, "store");
        assert_eq!(r.finish, FinishReason::ToolCalls);
        assert_eq!(r.usage.output_tokens, 4);
    }

    #[test]
    fn a_stream_without_a_finish_reason_is_an_error() {
        let mut a = Assembler::default();
        a.push(ChatEvent::TextDelta("half an ans".into()));
        assert!(matches!(a.finish(), Err(ProviderError::Unavailable(_))));
    }
}
