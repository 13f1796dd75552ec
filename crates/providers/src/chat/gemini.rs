//! Gemini `streamGenerateContent?alt=sse`, on Vertex AI or the Gemini API:
//! one body format, two addresses and two ways to authenticate.
//! - Vertex AI: `{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent`,
//!   a bearer token from a [`TokenSource`] (Application Default Credentials).
//! - Gemini API: `{base}/v1beta/models/{model}:streamGenerateContent`, an
//!   `x-goog-api-key` header.
//!
//! Request: `contents` of `user` / `model` turns made of `parts` (`text`,
//! `functionCall`, `functionResponse`), `systemInstruction`, `tools:
//! [{functionDeclarations}]` with `parametersJsonSchema`, and
//! `generationConfig` (`temperature`, `maxOutputTokens`, and
//! `responseMimeType: application/json` with `responseJsonSchema` for
//! structured output). Answer: `data: {candidates: [{content: {parts},
//! finishReason}], usageMetadata}` chunks; a function call arrives whole in
//! one part and has no id, so calls are numbered here.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::remote::ChatWire;
use super::{ChatEvent, ChatRequest, ChatRole, FinishReason, Usage};
use crate::ProviderError;
use crate::google::TokenSource;

/// How requests are authenticated.
pub enum GeminiAuth {
    /// Vertex AI: a bearer token.
    Vertex(Arc<dyn TokenSource>),
    /// The Gemini API: an API key.
    ApiKey(String),
}

/// The Gemini wire format.
pub struct GeminiWire {
    url: String,
    auth: GeminiAuth,
}

impl GeminiWire {
    /// Gemini `model` on Vertex AI in `project` / `location`; `base_url`
    /// empty for Google's regional endpoint.
    pub fn vertex(
        base_url: &str,
        project: &str,
        location: &str,
        model: &str,
        tokens: Arc<dyn TokenSource>,
    ) -> Self {
        let base = if base_url.is_empty() {
            match location {
                "global" => "https://aiplatform.googleapis.com".to_owned(),
                region => format!("https://{region}-aiplatform.googleapis.com"),
            }
        } else {
            base_url.trim_end_matches('/').to_owned()
        };
        Self {
            url: format!(
                "{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent?alt=sse"
            ),
            auth: GeminiAuth::Vertex(tokens),
        }
    }

    /// Gemini `model` through the Gemini API with `api_key`; `base_url` empty
    /// for `https://generativelanguage.googleapis.com`.
    pub fn api(base_url: &str, model: &str, api_key: String) -> Self {
        let base = if base_url.is_empty() {
            "https://generativelanguage.googleapis.com"
        } else {
            base_url.trim_end_matches('/')
        };
        Self {
            url: format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse"),
            auth: GeminiAuth::ApiKey(api_key),
        }
    }
}

/// A tool result as the object `functionResponse.response` must be: the
/// result's JSON object as is, anything else under `content`.
fn response_object(content: &str) -> Value {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(o)) => Value::Object(o),
        Ok(other) => json!({"content": other}),
        Err(_) => json!({"content": content}),
    }
}

/// The request body for `request`.
pub fn body(request: &ChatRequest) -> Value {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    for m in &request.messages {
        let (role, parts) = match m.role {
            ChatRole::System => {
                system.push(json!({"text": m.content}));
                continue;
            }
            ChatRole::User => ("user", vec![json!({"text": m.content})]),
            ChatRole::Assistant => {
                let mut parts = Vec::new();
                if !m.content.is_empty() {
                    parts.push(json!({"text": m.content}));
                }
                for c in &m.tool_calls {
                    let args = serde_json::from_str::<Value>(&c.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| Value::Object(Map::new()));
                    parts.push(json!({"functionCall": {"name": c.name, "args": args}}));
                }
                ("model", parts)
            }
            ChatRole::Tool => (
                "user",
                vec![json!({"functionResponse": {
                    "name": m.name.clone().unwrap_or_default(),
                    "response": response_object(&m.content),
                }})],
            ),
        };
        // Consecutive turns of one role are one content (tool results of one step).
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(p) = last["parts"].as_array_mut() {
                    p.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    if !request.tools.is_empty() {
        body["tools"] = json!([{"functionDeclarations": request.tools.iter().map(|t| json!({
            "name": t.name,
            "description": t.description,
            "parametersJsonSchema": t.parameters,
        })).collect::<Vec<_>>()}]);
    }
    let mut config = Map::new();
    if let Some(t) = request.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(n) = request.max_tokens {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(schema) = &request.response_schema {
        config.insert("responseMimeType".into(), json!("application/json"));
        config.insert("responseJsonSchema".into(), schema.clone());
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    body
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    prompt_feedback: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    function_call: Option<FunctionCall>,
    /// Thinking models mark their reasoning; it is not the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

/// What one answer's decoder remembers.
#[derive(Debug, Default)]
pub struct State {
    calls: usize,
    finish: Option<FinishReason>,
}

fn finish_reason(s: &str) -> FinishReason {
    match s {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Other,
    }
}

impl ChatWire for GeminiWire {
    type State = State;

    fn endpoint(&self) -> &str {
        &self.url
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        request: &ChatRequest,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let builder = http.post(&self.url).json(&body(request));
        Ok(match &self.auth {
            GeminiAuth::Vertex(tokens) => builder.bearer_auth(tokens.token().await?),
            GeminiAuth::ApiKey(key) => builder.header("x-goog-api-key", key),
        })
    }

    fn decode(
        &self,
        data: &str,
        state: &mut State,
    ) -> Result<Option<Vec<ChatEvent>>, ProviderError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::Provider(format!("unreadable chunk from {}: {e}", self.url))
        })?;
        let mut events = Vec::new();
        if chunk.candidates.is_empty()
            && let Some(feedback) = chunk.prompt_feedback
        {
            return Err(ProviderError::Provider(format!(
                "the prompt was blocked: {feedback}"
            )));
        }
        // One candidate is asked for; any others are ignored.
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(text) = part.text.filter(|t| !t.is_empty() && !part.thought) {
                    events.push(ChatEvent::TextDelta(text));
                }
                if let Some(call) = part.function_call {
                    let index = state.calls;
                    state.calls += 1;
                    let args = if call.args.is_null() {
                        json!({})
                    } else {
                        call.args
                    };
                    events.push(ChatEvent::ToolCallDelta {
                        index,
                        id: call.id.or_else(|| Some(format!("call_{index}"))),
                        name: Some(call.name),
                        arguments: args.to_string(),
                    });
                }
            }
            if let Some(reason) = candidate.finish_reason {
                state.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(u) = chunk.usage_metadata {
            events.push(ChatEvent::Usage(Usage {
                input_tokens: u.prompt_token_count,
                output_tokens: u.candidates_token_count + u.thoughts_token_count,
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

    fn unauthorized(&self) -> bool {
        match &self.auth {
            GeminiAuth::Vertex(tokens) => tokens.invalidate(),
            GeminiAuth::ApiKey(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatMessage, ToolCall, ToolSpec};

    #[test]
    fn a_tool_round_trip_becomes_model_and_user_turns() {
        let call = ToolCall {
            id: "call_0".into(),
            name: "memory_search".into(),
            arguments: r#"{"query":"tea"}"#.into(),
        };
        let mut assistant = ChatMessage::new(ChatRole::Assistant, "");
        assistant.tool_calls.push(call.clone());
        let request = ChatRequest {
            messages: vec![
                ChatMessage::new(ChatRole::System, "be brief"),
                ChatMessage::new(ChatRole::User, "what tea?"),
                assistant,
                ChatMessage::tool_result(&call, "[\"green\"]"),
            ],
            tools: vec![ToolSpec {
                name: "memory_search".into(),
                description: "search".into(),
                parameters: json!({"type": "object"}),
            }],
            response_schema: Some(json!({"type": "object"})),
            ..ChatRequest::default()
        };
        let b = body(&request);
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(
            b["contents"][1]["parts"][0]["functionCall"]["args"]["query"],
            "tea"
        );
        assert_eq!(
            b["contents"][2]["parts"][0]["functionResponse"]["response"]["content"][0],
            "green"
        );
        assert_eq!(
            b["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(
            b["tools"][0]["functionDeclarations"][0]["name"],
            "memory_search"
        );
    }
}
