//! OpenAI-compatible `chat/completions` with `stream: true`: OpenAI,
//! OpenRouter, vLLM, llama.cpp's server, Ollama and Gemini's
//! OpenAI-compatible endpoint all speak it.
//!
//! Request: `messages` (assistant tool calls as `tool_calls`, results as
//! `role: tool` with `tool_call_id`), `tools` as `function`s,
//! `response_format: {type: json_schema}` for structured output, and
//! `stream_options.include_usage` so the last chunk carries token counts.
//! Answer: `data: {choices: [{delta: {content, tool_calls: [{index, id,
//! function: {name, arguments}}]}, finish_reason}], usage}` chunks, then
//! `data: [DONE]`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::remote::ChatWire;
use super::{ChatEvent, ChatMessage, ChatRequest, ChatRole, FinishReason, Usage};
use crate::ProviderError;

/// The OpenAI-compatible wire format.
pub struct OpenAiWire {
    url: String,
    model: String,
    api_key: Option<String>,
}

impl OpenAiWire {
    /// Requests to `{base_url}/chat/completions` for `model`, with a bearer
    /// `api_key` when given.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        Self {
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            api_key: api_key.filter(|k| !k.is_empty()),
        }
    }
}

fn message(m: &ChatMessage) -> Value {
    match m.role {
        ChatRole::System => json!({"role": "system", "content": m.content}),
        ChatRole::User => json!({"role": "user", "content": m.content}),
        ChatRole::Assistant if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.content})
        }
        ChatRole::Assistant => json!({
            "role": "assistant",
            "content": if m.content.is_empty() { Value::Null } else { json!(m.content) },
            "tool_calls": m.tool_calls.iter().map(|c| json!({
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })).collect::<Vec<_>>(),
        }),
        ChatRole::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id,
            "content": m.content,
        }),
    }
}

/// The request body for `request` (streaming).
pub fn body(model: &str, request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": model,
        "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
    }
    if let Some(schema) = &request.response_schema {
        body["response_format"] = json!({
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": true},
        });
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = request.max_tokens {
        body["max_tokens"] = json!(n);
    }
    body
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<ChunkUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallPiece>,
}

#[derive(Deserialize)]
struct ToolCallPiece {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionPiece>,
}

#[derive(Deserialize)]
struct FunctionPiece {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// What one answer's decoder remembers.
#[derive(Debug, Default)]
pub struct State {
    /// The finish reason, held until the usage chunk that follows it.
    finish: Option<FinishReason>,
    usage_seen: bool,
}

fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

impl ChatWire for OpenAiWire {
    type State = State;

    fn endpoint(&self) -> &str {
        &self.url
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        request: &ChatRequest,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let builder = http.post(&self.url).json(&body(&self.model, request));
        Ok(match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        })
    }

    fn decode(
        &self,
        data: &str,
        state: &mut State,
    ) -> Result<Option<Vec<ChatEvent>>, ProviderError> {
        if data.trim() == "[DONE]" {
            return Ok(None);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::Provider(format!("unreadable chunk from {}: {e}", self.url))
        })?;
        let mut events = Vec::new();
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                events.push(ChatEvent::TextDelta(text));
            }
            for (n, piece) in choice.delta.tool_calls.into_iter().enumerate() {
                let (name, arguments) = match piece.function {
                    Some(f) => (f.name, f.arguments.unwrap_or_default()),
                    None => (None, String::new()),
                };
                events.push(ChatEvent::ToolCallDelta {
                    index: piece.index.unwrap_or(n),
                    id: piece.id,
                    name,
                    arguments,
                });
            }
            if let Some(reason) = choice.finish_reason {
                state.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(u) = chunk.usage {
            state.usage_seen = true;
            events.push(ChatEvent::Usage(Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            }));
        }
        Ok(Some(events))
    }

    fn end(&self, state: &mut State) -> Vec<ChatEvent> {
        state
            .finish
            .take()
            .map(ChatEvent::Finish)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Assembler;

    #[test]
    fn a_streamed_tool_call_and_usage_are_read() {
        let wire = OpenAiWire::new("http://x/v1", "m", None);
        let mut state = State::default();
        let mut a = Assembler::default();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"memory_search","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"query\":"}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"tea\"}"}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#,
        ] {
            for e in wire.decode(data, &mut state).unwrap().unwrap() {
                a.push(e);
            }
        }
        assert!(wire.decode("[DONE]", &mut state).unwrap().is_none());
        for e in wire.end(&mut state) {
            a.push(e);
        }
        let r = a.finish().unwrap();
        assert_eq!(r.tool_calls[0].id, "call_9");
        assert_eq!(r.tool_calls[0].arguments, r#"{"query":"tea"}"#);
        assert_eq!(r.usage.input_tokens, 12);
        assert_eq!(r.finish, FinishReason::ToolCalls);
    }
}
