//! One extraction end to end with a real small model, no network:
//! SmolLM2-135M-Instruct served by llama.cpp's OpenAI-compatible server
//! (`test_support::llama`), reached through `openai_compat` with a JSON
//! schema. Structure is asserted (the job completes, every decision is one
//! of the four actions, what it wrote exists), never wording.
//!
//! Needs the venv `scripts/local-model-test` prepares (it runs this test).

use std::time::{Duration, Instant};

use memory_client::{
    Action, AppendMessages, ExtractionPolicy, JobState, ListJobs, MemoryPolicy, NewMemory,
    NewMessage, Strategy,
};

use crate::support::{Server, config_toml, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local model venv: scripts/local-model-test runs it"]
async fn a_real_small_model_extracts_memories_from_a_session() {
    let (_llama, base_url) = test_support::llama::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[models.local]\nprovider = \"openai_compat\"\nbase_url = \"{base_url}\"\n\
         model = \"smollm2\"\nmax_tokens = 1500\ntemperature = 0.0\ntimeout_ms = 120000\n\
         max_retries = 1\n\n[jobs]\npoll_ms = 100\nmax_attempts = 3\nbackoff_ms = 1000\n"
    );
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &extra),
    );
    let c = server.client();
    c.set_policy(
        "team",
        &MemoryPolicy {
            extraction: Some(ExtractionPolicy {
                strategy: Strategy::Facts,
                model: "local".into(),
                ..ExtractionPolicy::default()
            }),
            ..MemoryPolicy::default()
        },
    )
    .await
    .unwrap();
    // A stored memory, so the decisions call runs too.
    c.create(&NewMemory {
        namespace: "team".into(),
        text: "Alice lives in Paris".into(),
        user_id: Some("alice".into()),
        ..NewMemory::default()
    })
    .await
    .unwrap();
    c.append_messages(
        "chat",
        &AppendMessages {
            namespace: "team".into(),
            user_id: Some("alice".into()),
            messages: vec![NewMessage {
                role: "user".into(),
                content: "I moved to Lisbon last month and I drink green tea every morning.".into(),
                agent_id: None,
            }],
            ..AppendMessages::default()
        },
    )
    .await
    .unwrap();
    let queued = c.extract("chat", "team").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let job = loop {
        let jobs = c
            .jobs(&ListJobs {
                namespace: "team".into(),
                ..ListJobs::default()
            })
            .await
            .unwrap()
            .jobs;
        let j = jobs.into_iter().find(|j| j.id == queued.id).unwrap();
        if matches!(j.state, JobState::Done | JobState::Failed) {
            break j;
        }
        assert!(Instant::now() < deadline, "{j:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert!(
        job.usage.calls >= 1 && job.usage.input_tokens > 0,
        "{job:?}"
    );
    for d in &job.decisions {
        if matches!(d.action, Action::Add | Action::Update | Action::Supersede) {
            let id = d.memory_id.expect("a write names its memory");
            let m = c.get(id).await.unwrap();
            assert_eq!(m.metadata["source_job_id"], job.id.to_string());
        }
    }
}
