//! A run's events as server-sent events, from any instance: the stored
//! events after `Last-Event-ID` first, then new ones as they are stored
//! (woken at once by this instance's hub, or by polling the replica for a
//! run executing elsewhere), until the terminal event.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use orchestrator_api::{RunEvent, StreamMode, event};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::runs::Runs;

/// How often a stream re-reads its replica when nothing woke it.
const POLL: Duration = Duration::from_millis(100);

struct Follow {
    runs: Arc<Runs>,
    run: Uuid,
    after: u64,
    known: HashSet<Uuid>,
    ready: VecDeque<RunEvent>,
    news: broadcast::Receiver<Uuid>,
    mode: StreamMode,
    done: bool,
    idle_polls: u32,
}

impl Follow {
    /// Reads the stored events after `self.after` that follow on without a gap.
    async fn fill(&mut self) {
        let found = match self
            .runs
            .records()
            .events_after(self.run, self.after, &mut self.known)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, run = %self.run, "cannot read run events; retrying");
                return;
            }
        };
        for (id, e) in found {
            if e.seq != self.after + 1 {
                // A gap (an earlier event not replicated here yet): read it again later.
                self.known.remove(&id);
                continue;
            }
            self.after = e.seq;
            if event::ends_stream(&e.event) {
                self.done = true;
            }
            self.ready.push_back(e);
        }
    }

    /// Waits for news of the run, or a poll interval.
    async fn wait(&mut self) {
        let until = tokio::time::Instant::now() + POLL;
        crate::events::news_of(&mut self.news, self.run, until).await;
    }

    /// Whether the run ended without a terminal event this stream can read
    /// (checked now and then while idle, so a stream never hangs on a lost run).
    async fn ended_silently(&mut self) -> bool {
        self.idle_polls += 1;
        if !self.idle_polls.is_multiple_of(20) {
            return false;
        }
        match self.runs.records().run(self.run).await {
            Ok(Some((r, _))) => r.run.status.is_terminal() && r.run.last_event <= self.after,
            Ok(None) => true,
            Err(_) => false,
        }
    }
}

fn to_sse(e: &RunEvent) -> Event {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(e.seq.to_string())
        .event(e.event.clone())
        .data(data)
}

/// The SSE response following `run` from after event `after`.
pub fn follow(
    runs: Arc<Runs>,
    run: Uuid,
    after: u64,
    mode: StreamMode,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let news = runs.hub().subscribe();
    let state = Follow {
        runs,
        run,
        after,
        known: HashSet::new(),
        ready: VecDeque::new(),
        news,
        mode,
        done: false,
        idle_polls: 0,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.ready.pop_front() {
                if s.mode == StreamMode::Messages && e.event == event::MESSAGE_DELTA {
                    continue;
                }
                return Some((Ok(to_sse(&e)), s));
            }
            if s.done {
                return None;
            }
            s.fill().await;
            if s.ready.is_empty() && !s.done {
                if s.ended_silently().await {
                    return None;
                }
                s.wait().await;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
