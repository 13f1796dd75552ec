//! What every HTTP chat provider shares: the retries before the answer starts
//! ([`crate::retry`]), a timeout per call, reading the SSE stream and handing
//! each event's data to the provider's decoder. A provider only says how to
//! phrase a request and read one streamed chunk ([`ChatWire`]).

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use futures_util::stream;

use super::sse::SseDecoder;
use super::{ChatEvent, ChatModel, ChatRequest, ChatStream};
use crate::ProviderError;
use crate::retry::RetryPolicy;

/// One provider's request and streamed-answer format.
pub trait ChatWire: Send + Sync + 'static {
    /// What the decoder remembers between chunks of one answer.
    type State: Default + Send;
    /// The URL requests go to (for error messages).
    fn endpoint(&self) -> &str;
    /// The streaming request for `request`.
    fn request(
        &self,
        http: &reqwest::Client,
        request: &ChatRequest,
    ) -> impl Future<Output = Result<reqwest::RequestBuilder, ProviderError>> + Send;
    /// The events in one SSE event's `data`; `Ok(None)` marks the end of the answer.
    fn decode(
        &self,
        data: &str,
        state: &mut Self::State,
    ) -> Result<Option<Vec<ChatEvent>>, ProviderError>;
    /// The events owed when the stream ends (e.g. a finish reason held back
    /// until the usage arrived).
    fn end(&self, _state: &mut Self::State) -> Vec<ChatEvent> {
        Vec::new()
    }
    /// The provider answered 401: drop cached credentials. Returns whether a
    /// retry with fresh ones may succeed.
    fn unauthorized(&self) -> bool {
        false
    }
}

/// A chat model that calls a provider over HTTP(S).
pub struct RemoteChat<W> {
    http: reqwest::Client,
    wire: W,
    policy: RetryPolicy,
    id: String,
}

impl<W: ChatWire> std::fmt::Debug for RemoteChat<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteChat")
            .field("endpoint", &self.wire.endpoint())
            .field("id", &self.id)
            .finish()
    }
}

impl<W: ChatWire> RemoteChat<W> {
    /// A model `id` speaking `wire`; `timeout` bounds one whole call.
    pub fn new(
        wire: W,
        id: String,
        timeout: Duration,
        policy: RetryPolicy,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ProviderError::Provider(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            wire,
            policy,
            id,
        })
    }
}

/// Where a streamed answer is.
enum Phase {
    /// Not sent yet.
    Start,
    /// Reading the answer.
    Reading(Box<Reading>),
    /// Over (the end marker, an error, or the body's end).
    Done,
}

struct Reading {
    response: reqwest::Response,
    sse: SseDecoder,
    ready: VecDeque<ChatEvent>,
    ended: bool,
}

impl<W: ChatWire> RemoteChat<W> {
    /// Feeds SSE data to the decoder; returns whether the end marker came.
    fn decode_all(
        &self,
        data: Vec<String>,
        state: &mut W::State,
        ready: &mut VecDeque<ChatEvent>,
    ) -> Result<bool, ProviderError> {
        for d in data {
            match self.wire.decode(&d, state)? {
                Some(events) => ready.extend(events),
                None => {
                    ready.extend(self.wire.end(state));
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl<W: ChatWire> ChatModel for RemoteChat<W> {
    fn id(&self) -> &str {
        &self.id
    }

    fn stream<'a>(&'a self, request: &'a ChatRequest) -> ChatStream<'a> {
        let start = (Phase::Start, W::State::default());
        Box::pin(stream::unfold(
            start,
            move |(phase, mut state)| async move {
                let mut reading = match phase {
                    Phase::Done => return None,
                    Phase::Reading(r) => *r,
                    Phase::Start => {
                        let sent = crate::retry::send(
                            self.policy,
                            self.wire.endpoint(),
                            || self.wire.request(&self.http, request),
                            || self.wire.unauthorized(),
                        )
                        .await;
                        match sent {
                            Ok(response) => Reading {
                                response,
                                sse: SseDecoder::default(),
                                ready: VecDeque::new(),
                                ended: false,
                            },
                            Err(e) => return Some((Err(e), (Phase::Done, state))),
                        }
                    }
                };
                loop {
                    if let Some(event) = reading.ready.pop_front() {
                        return Some((Ok(event), (Phase::Reading(Box::new(reading)), state)));
                    }
                    if reading.ended {
                        return None;
                    }
                    let chunk = match reading.response.chunk().await {
                        Ok(c) => c,
                        Err(e) => {
                            let e = ProviderError::Unavailable(format!(
                                "{}: answer cut short: {e}",
                                self.wire.endpoint()
                            ));
                            return Some((Err(e), (Phase::Done, state)));
                        }
                    };
                    let data = match chunk {
                        Some(bytes) => reading.sse.push(&bytes),
                        None => {
                            // The body ended: a last event without its blank line counts.
                            reading.ended = true;
                            let rest: Vec<String> = reading
                                .sse
                                .finish()
                                .into_iter()
                                .filter(|d| !d.is_empty())
                                .collect();
                            match self.decode_all(rest, &mut state, &mut reading.ready) {
                                Ok(true) => {}
                                Ok(false) => reading.ready.extend(self.wire.end(&mut state)),
                                Err(e) => return Some((Err(e), (Phase::Done, state))),
                            }
                            continue;
                        }
                    };
                    match self.decode_all(data, &mut state, &mut reading.ready) {
                        Ok(ended) => reading.ended = ended,
                        Err(e) => return Some((Err(e), (Phase::Done, state))),
                    }
                }
            },
        ))
    }
}
