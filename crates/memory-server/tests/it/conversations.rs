//! Conversations stored one turn per memory, through the real binary:
//! back-filled `created_at`, the `chat` template's human dates, exact
//! duplicates scoped by speaker and session (and `allow_duplicate`),
//! neighbouring turns (`context_window`) and `max_per_session` — including
//! what a window must not show: another agent's private turn, another
//! user's conversation under the same session id, another namespace.

use serde_json::{Map, Value, json};
use time::macros::datetime;

use crate::support::{Server, config_toml, free_port};
use memory_client::{
    ContextWindow, Feedback, MemoryClient, MemoryFilter, NewMemory, QueryTime, SearchMode,
    SearchRequest, Visibility,
};

fn server(dir: &std::path::Path, extra: &str) -> Server {
    Server::start(
        dir,
        &config_toml(free_port(), &dir.join("data"), None, extra),
    )
}

fn meta(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A turn of session `session` by `speaker`, numbered `turn`.
fn turn(ns: &str, session: &str, turn: i64, speaker: &str, text: &str) -> NewMemory {
    NewMemory {
        namespace: ns.into(),
        text: text.into(),
        user_id: Some("u1".into()),
        session_id: Some(session.into()),
        metadata: meta(&[("speaker", json!(speaker)), ("turn", json!(turn))]),
        ..NewMemory::default()
    }
}

async fn store(c: &MemoryClient, m: NewMemory) -> uuid::Uuid {
    c.create(&m).await.unwrap().memory.id
}

fn keyword(ns: &str, query: &str) -> SearchRequest {
    SearchRequest {
        namespace: ns.into(),
        query: Some(query.into()),
        mode: Some(SearchMode::Keyword),
        ..SearchRequest::default()
    }
}

#[tokio::test]
async fn back_filled_history_keeps_its_time_and_the_chat_template_dates_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "[search]\ntemplate = \"chat\"\n");
    let c = s.client();
    let said = datetime!(2023-05-08 13:56:00 UTC);
    let m = c
        .create(&NewMemory {
            created_at: Some(said),
            metadata: meta(&[("speaker", json!("Caroline"))]),
            ..turn(
                "chat",
                "s1",
                1,
                "Caroline",
                "I went to a support group yesterday.",
            )
        })
        .await
        .unwrap()
        .memory;
    assert_eq!(m.created_at, said);
    assert!(m.updated_at > said, "written now, said then");

    // The question's words are the date and the speaker, not the text's.
    let found = c
        .search(&keyword("chat", "What did Caroline do in May 2023?"))
        .await
        .unwrap();
    assert_eq!(found.results.first().map(|h| h.memory.id), Some(m.id));
    assert!(
        c.search(&keyword("chat", "8 May 2023"))
            .await
            .unwrap()
            .results
            .len()
            == 1
    );

    // Time filters and as_of see the back-filled time.
    let in_may = |after, before| SearchRequest {
        filter: MemoryFilter {
            created_after: Some(after),
            created_before: Some(before),
            ..MemoryFilter::default()
        },
        ..keyword("chat", "support group")
    };
    let may = in_may(
        datetime!(2023-05-01 0:00 UTC),
        datetime!(2023-06-01 0:00 UTC),
    );
    assert_eq!(c.search(&may).await.unwrap().results.len(), 1);
    let june = in_may(
        datetime!(2023-06-01 0:00 UTC),
        datetime!(2023-07-01 0:00 UTC),
    );
    assert!(c.search(&june).await.unwrap().results.is_empty());
    let before_it = SearchRequest {
        as_of: Some(datetime!(2023-05-01 0:00 UTC)),
        ..keyword("chat", "support group")
    };
    assert!(c.search(&before_it).await.unwrap().results.is_empty());

    // A time in the future is refused, saying which field and why.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/memories", s.url))
        .json(&json!({"namespace": "chat", "text": "from tomorrow",
                      "created_at": "2999-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body.to_string().contains("created_at is in the future"),
        "{body}"
    );
}

#[tokio::test]
async fn the_same_words_from_two_speakers_are_two_memories() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let a = c
        .create(&turn("dup", "s1", 7, "Melanie", "Take care!"))
        .await
        .unwrap();
    let b = c
        .create(&turn("dup", "s1", 8, "Caroline", "Take care!"))
        .await
        .unwrap();
    assert!(!a.duplicate && !b.duplicate);
    assert_ne!(a.memory.id, b.memory.id);
    assert_eq!(b.memory.metadata["speaker"], "Caroline");
    // Another conversation: another memory.
    let other = c
        .create(&turn("dup", "s2", 7, "Melanie", "Take care!"))
        .await
        .unwrap();
    assert!(!other.duplicate);
    // The very same turn sent again is the same memory.
    let again = c
        .create(&turn("dup", "s1", 7, "Melanie", "Take care!"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.memory.id, a.memory.id);
    // Unless the caller says a repeat is an event of its own.
    let repeat = c
        .create(&NewMemory {
            allow_duplicate: true,
            ..turn("dup", "s1", 7, "Melanie", "Take care!")
        })
        .await
        .unwrap();
    assert!(!repeat.duplicate);
    assert_ne!(repeat.memory.id, a.memory.id);
}

#[tokio::test]
async fn hits_come_with_their_neighbouring_turns_and_nothing_they_may_not_see() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    // Stored out of order: the turn number, not the time of storing, orders them.
    let texts = [
        "Did you finish the marathon training plan?",
        "Almost, the long runs are hard on my knees.",
        "You should try the physiotherapist on Elm Street.",
        "Good idea, I will call them tomorrow.",
        "Let me know how it goes!",
    ];
    let mut ids = vec![uuid::Uuid::nil(); texts.len()];
    for i in [3usize, 0, 4, 2, 1] {
        let speaker = if i % 2 == 0 { "Ann" } else { "Bo" };
        ids[i] = store(&c, turn("conv", "s1", i as i64, speaker, texts[i])).await;
    }
    // Another agent's private turn in the same session, another user's
    // conversation under the same session id, another namespace.
    store(
        &c,
        NewMemory {
            visibility: Visibility::Private,
            agent_id: Some("spy".into()),
            ..turn(
                "conv",
                "s1",
                2,
                "Ann",
                "private aside about the physiotherapist",
            )
        },
    )
    .await;
    store(
        &c,
        NewMemory {
            user_id: Some("u2".into()),
            ..turn("conv", "s1", 1, "Cy", "someone else's conversation")
        },
    )
    .await;
    store(
        &c,
        turn("elsewhere", "s1", 3, "Bo", "a turn in another namespace"),
    )
    .await;

    let window = |before, after| SearchRequest {
        context_window: Some(ContextWindow { before, after }),
        top_k: Some(1),
        ..keyword("conv", "physiotherapist Elm Street")
    };
    let found = c.search(&window(1, 1)).await.unwrap();
    let got: Vec<(uuid::Uuid, Option<i32>)> = found
        .results
        .iter()
        .map(|h| (h.memory.id, h.neighbor.map(|n| n.offset)))
        .collect();
    assert_eq!(
        got,
        vec![(ids[2], None), (ids[1], Some(-1)), (ids[3], Some(1))]
    );
    for h in &found.results[1..] {
        let n = h.neighbor.unwrap();
        assert_eq!(n.of, ids[2]);
        assert_eq!(h.score, found.results[0].score);
        assert!(h.similarity.is_none() && h.keyword_score.is_none());
    }

    // A window past the conversation's ends stops there; the spy's private
    // turn and the other user's turn never appear.
    let wide = c.search(&window(10, 10)).await.unwrap();
    let ids_seen: Vec<uuid::Uuid> = wide.results.iter().map(|h| h.memory.id).collect();
    assert_eq!(ids_seen, vec![ids[2], ids[0], ids[1], ids[3], ids[4]]);

    // Two hits next to each other: each memory appears once.
    let both = c
        .search(&SearchRequest {
            context_window: Some(ContextWindow {
                before: 1,
                after: 1,
            }),
            top_k: Some(2),
            ..keyword("conv", "physiotherapist knees")
        })
        .await
        .unwrap();
    let mut seen: Vec<uuid::Uuid> = both.results.iter().map(|h| h.memory.id).collect();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "a memory listed twice");
    assert_eq!(
        both.results.iter().filter(|h| h.neighbor.is_none()).count(),
        2
    );

    // Too wide a window is a 400 that says the limit.
    let err = c.search(&window(11, 0)).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("at most 10"), "{err}");
}

#[tokio::test]
async fn max_per_session_spreads_hits_over_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    for i in 0..4 {
        store(
            &c,
            turn("many", "s1", i, "Ann", &format!("garden tomatoes note {i}")),
        )
        .await;
    }
    store(
        &c,
        turn("many", "s2", 0, "Bo", "garden tomatoes in another chat"),
    )
    .await;
    let req = |cap| SearchRequest {
        max_per_session: cap,
        top_k: Some(3),
        ..keyword("many", "garden tomatoes")
    };
    let free = c.search(&req(None)).await.unwrap();
    assert_eq!(free.results.len(), 3);
    let capped = c.search(&req(Some(1))).await.unwrap();
    let sessions: Vec<String> = capped
        .results
        .iter()
        .filter_map(|h| h.memory.session_id.clone())
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(sessions.contains(&"s1".to_owned()) && sessions.contains(&"s2".to_owned()));
    let err = c.search(&req(Some(0))).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn a_time_named_in_the_question_filters_or_lifts_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let at = |t| NewMemory {
        created_at: Some(t),
        ..turn("when", "s1", 0, "Ann", "Ann went to the climbing gym")
    };
    let april = c
        .create(&at(datetime!(2023-04-20 18:00 UTC)))
        .await
        .unwrap()
        .memory
        .id;
    let may = c
        .create(&NewMemory {
            session_id: Some("s2".into()),
            ..at(datetime!(2023-05-09 18:00 UTC))
        })
        .await
        .unwrap()
        .memory
        .id;
    let ask = |q: &str, qt| SearchRequest {
        query_time: qt,
        ..keyword("when", q)
    };
    // Filter: only May's.
    let found = c
        .search(&ask("climbing gym in May 2023", Some(QueryTime::Filter)))
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = found.results.iter().map(|h| h.memory.id).collect();
    assert_eq!(ids, vec![may]);
    let range = found.time_range.unwrap();
    assert_eq!(range.phrase, "may 2023");
    assert_eq!(range.from, datetime!(2023-05-01 0:00 UTC));
    assert_eq!(range.applied, QueryTime::Filter);
    // Boost (the default): both, May's first.
    let found = c
        .search(&ask("climbing gym in May 2023", None))
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = found.results.iter().map(|h| h.memory.id).collect();
    assert_eq!(ids, vec![may, april]);
    assert_eq!(found.time_range.unwrap().applied, QueryTime::Boost);
    // Off: no range read.
    let found = c
        .search(&ask("climbing gym in May 2023", Some(QueryTime::Off)))
        .await
        .unwrap();
    assert!(found.time_range.is_none());
    // "last week" counts back from the caller's reference time.
    let found = c
        .search(&SearchRequest {
            reference_time: Some(datetime!(2023-04-25 12:00 UTC)),
            ..ask("climbing gym last week", Some(QueryTime::Filter))
        })
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = found.results.iter().map(|h| h.memory.id).collect();
    assert_eq!(ids, vec![april]);
}

#[tokio::test]
async fn a_namespace_shows_its_settings_and_patterns_set_them_for_namespaces_made_on_the_fly() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        "[search]\nalpha = 0.6\n\n[search.namespaces.\"chat-*\"]\ntemplate = \"chat\"\n\n\
         [search.namespaces.chat-fr]\nlanguage = \"french\"\nbm25_b = 0.3\n",
    );
    let http = reqwest::Client::new();
    let get = |ns: &str| {
        let url = format!("{}/v1/namespaces/{ns}/settings", s.url);
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let plain = get("notes").await;
    assert_eq!(plain["source"], "default");
    assert_eq!(
        plain["template"],
        "{?{metadata.speaker} ({created_at:human}): }{text}"
    );
    assert!((plain["alpha"].as_f64().unwrap() - 0.6).abs() < 1e-6);
    assert!((plain["bm25_k1"].as_f64().unwrap() - 1.2).abs() < 1e-6);
    assert!((plain["bm25_b"].as_f64().unwrap() - 0.75).abs() < 1e-6);
    assert_eq!(
        plain["named_templates"]["chat"],
        "{?{metadata.speaker} ({created_at:human}): }{text}{previous_turn}"
    );

    // A namespace nobody configured by name takes its pattern's template...
    let support = get("chat-support").await;
    assert_eq!(support["source"], "pattern");
    assert_eq!(support["matched"], "chat-*");
    assert_eq!(support["template"], "chat");
    assert_eq!(
        support["template_expanded"],
        "{?{metadata.speaker} ({created_at:human}): }{text}{previous_turn}"
    );
    // ...and renders with it.
    let c = s.client();
    c.create(&NewMemory {
        created_at: Some(datetime!(2023-05-08 10:00 UTC)),
        ..turn("chat-support", "s1", 0, "Caroline", "I joined a choir.")
    })
    .await
    .unwrap();
    let found = c
        .search(&keyword("chat-support", "Caroline 8 May 2023"))
        .await
        .unwrap();
    assert_eq!(found.results.len(), 1);
    // An exact name beats the pattern.
    let fr = get("chat-fr").await;
    assert_eq!(fr["source"], "namespace");
    assert_eq!(fr["language"], "french");
    assert!((fr["bm25_b"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert_eq!(fr["template"], plain["template"]);

    // The default names and dates a turn that has a speaker, and leaves a
    // memory without one as its text: only the turn is found by its date.
    for (session, speaker) in [("s1", "Melanie"), ("s2", "")] {
        let mut m = turn("notes", session, 0, speaker, "We went camping.");
        if speaker.is_empty() {
            m.metadata.remove("speaker");
        }
        c.create(&NewMemory {
            created_at: Some(datetime!(2023-07-14 10:00 UTC)),
            ..m
        })
        .await
        .unwrap();
    }
    let found = c.search(&keyword("notes", "14 July 2023")).await.unwrap();
    assert_eq!(found.results.len(), 1, "{found:?}");
    assert_eq!(found.results[0].memory.session_id.as_deref(), Some("s1"));
    let both = c.search(&keyword("notes", "camping")).await.unwrap();
    assert_eq!(both.results.len(), 2, "{both:?}");
}

#[tokio::test]
async fn feedback_widens_the_query_with_what_the_first_pass_found() {
    let dir = tempfile::tempdir().unwrap();
    // `plain`: the turns' own words only (the default would put "Ann" in
    // front of the present, and one pass would find it by her name).
    let s = server(dir.path(), "[search]\ntemplate = \"plain\"\n");
    let c = s.client();
    let sister = store(
        &c,
        turn(
            "fb",
            "s1",
            0,
            "Ann",
            "Ann: My sister Clara is visiting from Porto next month.",
        ),
    )
    .await;
    let present = store(
        &c,
        turn("fb", "s2", 0, "Ann", "Clara surprised me with a telescope!"),
    )
    .await;
    store(
        &c,
        turn(
            "fb",
            "s3",
            0,
            "Bo",
            "Bo: my cousin is visiting too, from Lyon.",
        ),
    )
    .await;
    store(
        &c,
        turn("fb", "s4", 0, "Bo", "Bo: the weather in Porto was lovely."),
    )
    .await;
    let ask = |feedback| SearchRequest {
        top_k: Some(2),
        feedback,
        ..keyword("fb", "What did Ann's sister give her?")
    };
    // One pass finds the turn naming the sister, not the present.
    let plain = c.search(&ask(None)).await.unwrap();
    assert_eq!(plain.results.first().map(|h| h.memory.id), Some(sister));
    assert!(
        plain.results.iter().all(|h| h.memory.id != present),
        "{:?}",
        plain
            .results
            .iter()
            .map(|h| (&h.memory.text, h.score, h.keyword_score))
            .collect::<Vec<_>>()
    );
    assert!(plain.feedback.is_none());
    // With feedback from the best first result, her name finds the present.
    let widened = c
        .search(&ask(Some(Feedback {
            docs: 1,
            terms: 5,
            weight: 0.3,
        })))
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = widened.results.iter().map(|h| h.memory.id).collect();
    assert!(ids.contains(&sister) && ids.contains(&present), "{ids:?}");
    let used = widened.feedback.unwrap();
    assert_eq!(used.from, vec![sister]);
    assert!(used.terms.contains(&"clara".to_owned()), "{:?}", used.terms);

    for bad in [
        json!({"docs": 0}),
        json!({"docs": 11}),
        json!({"terms": 21}),
        json!({"weight": 1.5}),
    ] {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/memories/search", s.url))
            .json(&json!({"namespace": "fb", "query": "sister", "feedback": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains("feedback."), "{body}");
    }
}

#[tokio::test]
async fn names_in_the_question_lift_the_turns_that_mention_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "[search]\ntemplate = \"chat\"\n");
    let c = s.client();
    let hers = store(&c, turn("ent", "s1", 0, "Melanie", "I went out early.")).await;
    let other = store(
        &c,
        turn(
            "ent",
            "s2",
            0,
            "Caroline",
            "I painted the lake at sunrise, it was beautiful.",
        ),
    )
    .await;
    let ask = |weight: Option<f32>| SearchRequest {
        entity_weight: weight,
        top_k: Some(2),
        ..keyword("ent", "What did Melanie paint at the lake at sunrise?")
    };
    let plain = c.search(&ask(None)).await.unwrap();
    let order: Vec<_> = plain.results.iter().map(|h| h.memory.id).collect();
    assert_eq!(order, [other, hers], "the shared words win without it");
    assert!(plain.entities.is_empty());

    let lifted = c.search(&ask(Some(0.6))).await.unwrap();
    let order: Vec<_> = lifted.results.iter().map(|h| h.memory.id).collect();
    assert_eq!(order, [hers, other], "the turn naming Melanie rises");
    assert_eq!(lifted.entities, ["Melanie"], "question words are not names");

    for bad in [1.5, -0.1] {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/memories/search", s.url))
            .json(&json!({"namespace": "ent", "query": "Melanie", "entity_weight": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("entity_weight"));
    }
}

/// The ids `req` finds, best first.
async fn found_ids(c: &MemoryClient, req: &SearchRequest) -> Vec<uuid::Uuid> {
    let found = c.search(req).await.unwrap();
    found.results.iter().map(|h| h.memory.id).collect()
}

#[tokio::test]
async fn a_turn_carries_the_turn_before_for_its_readers_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        "[search]\ntemplate = \"turns\"\n\n[search.namespaces.flat]\ntemplate = \"plain\"\n",
    );
    let c = s.client();
    let asked = "Did you adopt the cat from the shelter?";
    let answered = "Yes, a tabby called Miso!";
    let q = store(&c, turn("conv", "s1", 0, "Nora", asked)).await;
    let a = store(&c, turn("conv", "s1", 1, "Gina", answered)).await;
    let flat_q = store(&c, turn("flat", "s1", 0, "Nora", asked)).await;
    let flat_a = store(&c, turn("flat", "s1", 1, "Gina", answered)).await;

    // The answer is found by what was asked, below the question itself;
    // under a template without the turn before, it is not found at all.
    assert_eq!(found_ids(&c, &keyword("conv", "shelter")).await, vec![q, a]);
    assert_eq!(
        found_ids(&c, &keyword("flat", "shelter")).await,
        vec![flat_q]
    );
    // Its vector carries the question too, at less than the question's own.
    let similarity = |ns: &str| {
        let c = c.clone();
        let ns = ns.to_owned();
        async move {
            let found = c
                .search(&SearchRequest {
                    mode: Some(SearchMode::Vector),
                    top_k: Some(10),
                    ..keyword(&ns, "adopt the cat from the shelter")
                })
                .await
                .unwrap();
            found
                .results
                .iter()
                .map(|h| (h.memory.id, h.similarity.unwrap_or(0.0)))
                .collect::<Vec<_>>()
        }
    };
    let with = similarity("conv").await;
    let without = similarity("flat").await;
    let of = |hits: &[(uuid::Uuid, f32)], id| {
        hits.iter().find(|(h, _)| *h == id).map_or(0.0, |(_, s)| *s)
    };
    assert_eq!(with.first().map(|h| h.0), Some(q));
    assert!(
        of(&with, a) > of(&without, flat_a) + 0.2,
        "with the turn before {with:?}, without {without:?}"
    );
    // The memory shows its own text; only the index holds the turn before.
    let got = c.get(a).await.unwrap();
    assert_eq!(got.text, answered);

    // Another agent's private turn shapes neither a shared turn after it
    // nor anything a third agent finds; its author's own next turn carries it.
    let spy_turn = |n, text| NewMemory {
        visibility: Visibility::Private,
        agent_id: Some("spy".into()),
        ..turn("conv", "s1", n, "Gina", text)
    };
    store(&c, spy_turn(2, "the vault code is zebra")).await;
    let spy_after = store(&c, spy_turn(3, "noted")).await;
    let shared_after = store(&c, turn("conv", "s1", 4, "Nora", "Lovely name.")).await;
    let as_agent = |agent: &str| SearchRequest {
        as_agent: Some(agent.into()),
        ..keyword("conv", "zebra")
    };
    assert!(found_ids(&c, &as_agent("other")).await.is_empty());
    assert!(found_ids(&c, &keyword("conv", "zebra")).await.is_empty());
    let spy_sees = found_ids(&c, &as_agent("spy")).await;
    assert_eq!(spy_sees.len(), 2, "{spy_sees:?}");
    assert!(spy_sees.contains(&spy_after));
    // The shared turn took the last shared turn before it instead (in
    // either order: BM25 ranks the shorter text first).
    let mut miso = found_ids(&c, &keyword("conv", "Miso")).await;
    miso.sort();
    let mut expected = vec![a, shared_after];
    expected.sort();
    assert_eq!(miso, expected);

    // Another user's conversation under the same session id is its own.
    let other_user = store(
        &c,
        NewMemory {
            user_id: Some("u2".into()),
            ..turn("conv", "s1", 5, "Cy", "unrelated")
        },
    )
    .await;
    assert!(
        !found_ids(&c, &keyword("conv", "Lovely"))
            .await
            .contains(&other_user)
    );

    // Turns written in one call chain as if written one by one, by turn number.
    let batch = c
        .create_many(vec![
            turn("conv", "s2", 1, "Bo", "It was the blue one."),
            turn("conv", "s2", 0, "Al", "Which kayak did you rent?"),
        ])
        .await
        .unwrap()
        .memories;
    let (blue, kayak) = (batch[0].memory.id, batch[1].memory.id);
    assert_eq!(
        found_ids(&c, &keyword("conv", "kayak")).await,
        vec![kayak, blue]
    );
    assert_eq!(found_ids(&c, &keyword("conv", "blue")).await, vec![blue]);

    // An edited turn is indexed with the turn before it as it stands.
    c.update(
        a,
        &memory_client::MemoryPatch {
            text: Some("Yes, a ginger one.".into()),
            ..memory_client::MemoryPatch::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(found_ids(&c, &keyword("conv", "shelter")).await, vec![q, a]);
    assert!(found_ids(&c, &keyword("conv", "ginger")).await.contains(&a));
}
