//! Sessions (working memory) end to end: put, get, append with a window,
//! concurrent appends, list, promote, delete, TTL, tenancy.

use std::time::Duration;

use crate::support::{Server, auth_keys, config_toml, free_port};
use memory_client::{
    AppendMessages, Kind, MemoryClient, NewMessage, Promote, PutSession, SearchRequest,
};

fn msg(role: &str, content: &str) -> NewMessage {
    NewMessage {
        role: role.into(),
        content: content.into(),
        agent_id: None,
    }
}

fn append(ns: &str, messages: Vec<NewMessage>) -> AppendMessages {
    AppendMessages {
        namespace: ns.into(),
        user_id: Some("alice".into()),
        messages,
        ..AppendMessages::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_keep_a_window_append_atomically_and_promote() {
    let dir = tempfile::tempdir().unwrap();
    let keys = auth_keys(&[
        ("a", "ka", "write", &["s"], None),
        ("b", "kb", "write", &["other"], None),
    ]);
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &keys),
    );
    let c = server.client().with_key("ka");

    // Put, then get it back.
    let put = c
        .put_session(
            "chat-1",
            &PutSession {
                namespace: "s".into(),
                user_id: Some("alice".into()),
                messages: vec![msg("user", "hi, I'm planning a trip to Lisbon")],
                context: Some("trip planning".into()),
                data: serde_json::json!({"step": 1}),
                ttl_secs: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(put.messages.len(), 1);
    assert_eq!(c.get_session("s", "chat-1").await.unwrap(), put);

    // Append with a window of 3: older messages are trimmed and counted.
    let mut w = append(
        "s",
        vec![msg("assistant", "great, when?"), msg("user", "in May")],
    );
    w.window = Some(3);
    let a = c.append_messages("chat-1", &w).await.unwrap();
    assert_eq!(
        (a.session.messages.len(), a.trimmed_now, a.session.trimmed),
        (3, 0, 0)
    );
    let mut w = append(
        "s",
        vec![
            msg("assistant", "noted: May"),
            msg("user", "and a budget of 2000 EUR"),
        ],
    );
    w.window = Some(3);
    let a = c.append_messages("chat-1", &w).await.unwrap();
    assert_eq!(
        (a.session.messages.len(), a.trimmed_now, a.session.trimmed),
        (3, 2, 2)
    );
    let contents: Vec<&str> = a
        .session
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(
        contents,
        ["in May", "noted: May", "and a budget of 2000 EUR"]
    );
    assert_eq!(a.session.context.as_deref(), Some("trip planning"));
    assert_eq!(a.session.data["step"], 1);

    // Sixteen concurrent appends of five messages each: none lost, none repeated.
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let c: MemoryClient = c.clone();
            tokio::spawn(async move {
                let messages = (0..5).map(|i| msg("user", &format!("t{t} m{i}"))).collect();
                let mut req = append("s", messages);
                req.window = Some(1000);
                c.append_messages("busy", &req).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let busy = c.get_session("s", "busy").await.unwrap();
    assert_eq!(busy.messages.len(), 80);
    let mut seen: Vec<&str> = busy.messages.iter().map(|m| m.content.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 80);
    // Each append's five messages stay together and in order.
    for t in 0..16 {
        let pos: Vec<usize> = (0..5)
            .map(|i| {
                busy.messages
                    .iter()
                    .position(|m| m.content == format!("t{t} m{i}"))
                    .unwrap()
            })
            .collect();
        assert!(
            pos.windows(2).all(|w| w[1] == w[0] + 1),
            "append {t} interleaved: {pos:?}"
        );
    }

    // List by namespace and user.
    let listed = c.list_sessions("s", Some("alice")).await.unwrap();
    let ids: Vec<&str> = listed
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"chat-1") && ids.contains(&"busy"));
    assert!(
        c.list_sessions("s", Some("bob"))
            .await
            .unwrap()
            .sessions
            .is_empty()
    );

    // Sessions never show up as memories.
    let found = c
        .search(&SearchRequest {
            namespace: "s".into(),
            query: Some("budget".into()),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    assert!(found.results.is_empty());

    // Promote two messages to long-term memory: then search finds them.
    let promoted = c
        .promote(
            "chat-1",
            &Promote {
                namespace: "s".into(),
                indexes: Some(vec![0, 2]),
                kind: Some(Kind::Episodic),
                tags: vec!["trip".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.memories.len(), 2);
    let m = &promoted.memories[1].memory;
    assert_eq!(m.text, "and a budget of 2000 EUR");
    assert_eq!(
        (m.kind, m.session_id.as_deref(), m.user_id.as_deref()),
        (Kind::Episodic, Some("chat-1"), Some("alice"))
    );
    assert_eq!(m.metadata["role"], "user");
    let found = c
        .search(&SearchRequest {
            namespace: "s".into(),
            query: Some("budget 2000".into()),
            ..SearchRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(found.results[0].memory.id, m.id);
    let bad = c
        .promote(
            "chat-1",
            &Promote {
                namespace: "s".into(),
                indexes: Some(vec![99]),
                ..Promote::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(400));

    // Tenancy: another namespace's key gets 403, and nothing changes.
    let other = server.client().with_key("kb");
    assert_eq!(
        other.get_session("s", "chat-1").await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        other
            .append_messages("chat-1", &append("s", vec![msg("user", "x")]))
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(
        other
            .delete_session("s", "chat-1")
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(
        other.list_sessions("s", None).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        other
            .get_session("other", "chat-1")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    assert_eq!(
        c.get_session("s", "chat-1").await.unwrap().messages.len(),
        3
    );

    // Bad input.
    let empty = c
        .append_messages("chat-1", &append("s", vec![]))
        .await
        .unwrap_err();
    assert_eq!(empty.status(), Some(400));
    let blank = c
        .append_messages("chat-1", &append("s", vec![msg("user", "  ")]))
        .await
        .unwrap_err();
    assert_eq!(blank.status(), Some(400));
    let mut huge = append("s", vec![msg("user", "x")]);
    huge.window = Some(1_000_000);
    assert_eq!(
        c.append_messages("chat-1", &huge)
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );

    // TTL: gone after it passes.
    let mut short = append("s", vec![msg("user", "short-lived")]);
    short.ttl_secs = Some(1);
    c.append_messages("brief", &short).await.unwrap();
    assert!(c.get_session("s", "brief").await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.get_session("s", "brief").await.unwrap_err().status(),
        Some(404)
    );

    // Delete.
    c.delete_session("s", "chat-1").await.unwrap();
    assert_eq!(
        c.get_session("s", "chat-1").await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(
        c.delete_session("s", "chat-1").await.unwrap_err().status(),
        Some(404)
    );
}
