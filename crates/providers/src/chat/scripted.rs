//! A chat model that answers by rules from configuration, with no network:
//! the offline default, the README walkthrough, and tests.
//!
//! Each call looks at the conversation's last message and takes the first
//! rule that matches (`contains` a phrase, case-insensitively; `after_tool`
//! for a tool's result; `structured` when a JSON answer is asked for). A rule
//! answers with `reply` text, a `json` value, or a `tool_call`. Templates in
//! text and arguments: `{input}` is the last user message, `{last}` the last
//! message of any kind, `{context}` the system messages (what memory put
//! there), `{tools}` the names of the tools offered, comma-separated. With no rule matching, the model echoes `{input}`. Answers stream
//! word by word after `latency_ms`; token counts are words.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ChatEvent, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason, Usage};
use crate::ProviderError;

/// One rule of a scripted model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptRule {
    /// Matches when the last message contains this (case-insensitive).
    pub contains: Option<String>,
    /// Matches only when the last message is (true) or is not (false) a tool result.
    pub after_tool: Option<bool>,
    /// Matches only when a JSON answer is (true) or is not (false) asked for.
    pub structured: Option<bool>,
    /// Answer text (a template).
    pub reply: Option<String>,
    /// Answer JSON (sent as its text).
    pub json: Option<Value>,
    /// A tool call to make instead of answering.
    pub tool_call: Option<ScriptedCall>,
    /// Fail the call with this message instead (to test error paths).
    pub fail: Option<String>,
}

/// A tool call a rule makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    /// The tool.
    pub name: String,
    /// Its arguments; string values are templates.
    #[serde(default)]
    pub arguments: Value,
}

/// The scripted model.
#[derive(Debug, Clone)]
pub struct ScriptedModel {
    id: String,
    rules: Vec<ScriptRule>,
    latency: Duration,
}

impl ScriptedModel {
    /// A model named `name` following `rules`, answering after `latency`.
    pub fn new(name: &str, rules: Vec<ScriptRule>, latency: Duration) -> Self {
        Self {
            id: format!("scripted:{name}"),
            rules,
            latency,
        }
    }

    /// What `request` gets, as events.
    fn answer(&self, request: &ChatRequest) -> Result<Vec<ChatEvent>, ProviderError> {
        let last = request.messages.last();
        let last_text = last.map_or("", |m| m.content.as_str());
        let after_tool = last.is_some_and(|m| m.role == ChatRole::Tool);
        let input = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == ChatRole::User)
            .map_or("", |m| m.content.as_str());
        let context: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == ChatRole::System)
            .map(|m| m.content.as_str())
            .collect();
        let context = context.join("\n");
        let tools: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
        let tools = tools.join(",");
        let fill = |t: &str| {
            t.replace("{input}", input)
                .replace("{last}", last_text)
                .replace("{context}", &context)
                .replace("{tools}", &tools)
        };
        let lowered = last_text.to_lowercase();
        let rule = self.rules.iter().find(|r| {
            r.contains
                .as_ref()
                .is_none_or(|c| lowered.contains(&c.to_lowercase()))
                && r.after_tool.is_none_or(|t| t == after_tool)
                && r.structured
                    .is_none_or(|s| s == request.response_schema.is_some())
        });
        let words_in: u64 = request
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u64)
            .sum();
        let mut events = Vec::new();
        let (text, finish) = match rule {
            Some(ScriptRule {
                fail: Some(message),
                ..
            }) => return Err(ProviderError::Unavailable(fill(message))),
            Some(ScriptRule {
                tool_call: Some(call),
                ..
            }) => {
                let arguments = fill_json(&call.arguments, &fill);
                events.push(ChatEvent::ToolCallDelta {
                    index: 0,
                    id: Some("call_0".into()),
                    name: Some(call.name.clone()),
                    arguments: arguments.to_string(),
                });
                (String::new(), FinishReason::ToolCalls)
            }
            Some(ScriptRule {
                json: Some(value), ..
            }) => (fill_json(value, &fill).to_string(), FinishReason::Stop),
            Some(ScriptRule {
                reply: Some(reply), ..
            }) => (fill(reply), FinishReason::Stop),
            _ if request.response_schema.is_some() => {
                return Err(ProviderError::Provider(format!(
                    "{} has no rule giving a JSON answer here (add one with `json`)",
                    self.id
                )));
            }
            _ => (input.to_owned(), FinishReason::Stop),
        };
        let words_out = text.split_whitespace().count() as u64;
        // Word by word, keeping the spaces, so the deltas join to the text.
        let mut piece = String::new();
        for c in text.chars() {
            if c.is_whitespace() && !piece.trim().is_empty() {
                events.push(ChatEvent::TextDelta(std::mem::take(&mut piece)));
            }
            piece.push(c);
        }
        if !piece.is_empty() {
            events.push(ChatEvent::TextDelta(piece));
        }
        events.push(ChatEvent::Usage(Usage {
            input_tokens: words_in,
            output_tokens: words_out.max(u64::from(finish == FinishReason::ToolCalls)),
        }));
        events.push(ChatEvent::Finish(finish));
        Ok(events)
    }
}

/// `value` with every string filled in.
fn fill_json(value: &Value, fill: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(fill(s)),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill_json(v, fill)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), fill_json(v, fill)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl ChatModel for ScriptedModel {
    fn id(&self) -> &str {
        &self.id
    }

    fn stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a> {
        let latency = self.latency;
        let answer = self.answer(request);
        Box::pin(
            stream::once(async move {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                answer
            })
            .flat_map(|answer| {
                let items: Vec<Result<ChatEvent, ProviderError>> = match answer {
                    Ok(events) => events.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                stream::iter(items)
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatMessage, complete};

    async fn ask(
        model: &ScriptedModel,
        text: &str,
    ) -> Result<crate::chat::ChatResponse, ProviderError> {
        let request = ChatRequest {
            messages: vec![ChatMessage::new(ChatRole::User, text)],
            ..ChatRequest::default()
        };
        complete(model, &request, |_| {}).await
    }

    #[tokio::test]
    async fn the_first_matching_rule_answers_and_the_rest_echo() {
        let model = ScriptedModel::new(
            "t",
            vec![
                ScriptRule {
                    contains: Some("REMEMBER".into()),
                    tool_call: Some(ScriptedCall {
                        name: "memory_store".into(),
                        arguments: serde_json::json!({"text": "{input}"}),
                    }),
                    ..ScriptRule::default()
                },
                ScriptRule {
                    after_tool: Some(true),
                    reply: Some("stored".into()),
                    ..ScriptRule::default()
                },
            ],
            Duration::ZERO,
        );
        let r = ask(&model, "please remember I like tea").await.unwrap();
        assert_eq!(r.tool_calls[0].name, "memory_store");
        assert_eq!(
            r.tool_calls[0].arguments,
            r#"{"text":"please remember I like tea"}"#
        );
        let r = ask(&model, "hello there  world").await.unwrap();
        assert_eq!(r.text, "hello there  world");
        assert_eq!(r.finish, FinishReason::Stop);
        assert_eq!(r.usage.output_tokens, 3);
    }
}
