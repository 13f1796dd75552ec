//! Vector, keyword and hybrid search through the real binary: fusion, score
//! explanations, filters, odd query text, contextual-text templates and the
//! re-index after a template change, MMR, and bad parameters.

use std::time::{Duration, Instant};

use crate::support::{Server, config_dir, config_toml, free_port};
use memory_client::{
    Bm25Params, Fusion, MemoryClient, MemoryFilter, Mmr, NewMemory, SearchMode, SearchRequest,
    SearchResponse,
};

const DIMS: usize = 384;

fn memory(ns: &str, text: &str) -> NewMemory {
    NewMemory {
        namespace: ns.into(),
        text: text.into(),
        ..NewMemory::default()
    }
}

fn request(ns: &str, query: &str, mode: Option<SearchMode>) -> SearchRequest {
    SearchRequest {
        namespace: ns.into(),
        query: Some(query.into()),
        mode,
        ..SearchRequest::default()
    }
}

/// A unit vector along axis `i`, blended with a little of axis `j`.
fn axis(i: usize, j: usize, w: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    v[i] = 1.0;
    v[j] += w;
    v
}

async fn texts(c: &MemoryClient, req: &SearchRequest) -> Vec<String> {
    c.search(req)
        .await
        .unwrap()
        .results
        .into_iter()
        .map(|h| h.memory.text)
        .collect()
}

/// Stores `text` as agent "secretive"'s private memory, which the
/// searches here (made as no agent) must never return.
async fn private_note(c: &MemoryClient, ns: &str, text: &str) {
    c.create(&NewMemory {
        agent_id: Some("secretive".into()),
        visibility: memory_client::Visibility::Private,
        ..memory(ns, text)
    })
    .await
    .unwrap();
}

fn server(dir: &std::path::Path, extra: &str) -> Server {
    Server::start(
        dir,
        &config_toml(free_port(), &dir.join("data"), None, extra),
    )
}

#[tokio::test]
async fn hybrid_fuses_two_retrievers_and_explains_each_score() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let ns = "modes";
    // Sixty memories close to the query vector, none saying "zanzibar"; one
    // far from it that does. The vector side never reaches it: a hybrid
    // search's sides gather 40 candidates each.
    let mut near = Vec::new();
    for i in 0..60 {
        near.push(NewMemory {
            vector: Some(axis(0, i + 1, 0.1 + i as f32 * 0.01)),
            ..memory(ns, &format!("routine status note number {i}"))
        });
    }
    c.create_many(near).await.unwrap();
    let far = c
        .create(&NewMemory {
            vector: Some(axis(300, 301, 0.5)),
            ..memory(ns, "The shipment to Zanzibar left on Tuesday")
        })
        .await
        .unwrap()
        .memory;
    let query_vector = axis(0, 1, 0.05);
    let with_vector = |mode| SearchRequest {
        vector: Some(query_vector.clone()),
        top_k: Some(10),
        ..request(ns, "zanzibar shipment", mode)
    };

    let vector = c
        .search(&with_vector(Some(SearchMode::Vector)))
        .await
        .unwrap();
    assert_eq!(vector.mode, SearchMode::Vector);
    assert!(vector.results.iter().all(|h| h.memory.id != far.id));
    assert!(vector.results.iter().all(|h| h.keyword_score.is_none()
        && h.similarity.is_some()
        && h.vector_rank.is_some()
        && h.score == h.similarity.unwrap()));

    let keyword = c
        .search(&with_vector(Some(SearchMode::Keyword)))
        .await
        .unwrap();
    assert_eq!(keyword.mode, SearchMode::Keyword);
    assert_eq!(keyword.plan, "bm25");
    assert_eq!(keyword.results.len(), 1, "only one memory has the words");
    let k = &keyword.results[0];
    assert_eq!(k.memory.id, far.id);
    assert!(k.keyword_score.unwrap() > 0.0);
    assert_eq!(
        (k.keyword_rank, k.vector_rank, k.score),
        (Some(1), None, 1.0)
    );

    // Default mode with query text is hybrid; the keyword-only find is in the results.
    let hybrid = c.search(&with_vector(None)).await.unwrap();
    assert_eq!(hybrid.mode, SearchMode::Hybrid);
    let h = hybrid
        .results
        .iter()
        .find(|h| h.memory.id == far.id)
        .expect("hybrid finds what only the keyword side found");
    assert_eq!((h.keyword_rank, h.vector_rank), (Some(1), None));
    assert!(h.similarity.is_some(), "its similarity is still computed");
    assert_eq!(h.score, h.fused_score.unwrap());
    assert!(hybrid.results.iter().all(|h| h.fused_score.is_some()));
    // Weighted fusion by default, alpha 0.5: the best keyword score counts 1.
    let expected = 0.5 * h.similarity.unwrap().max(0.0) + 0.5;
    assert!((h.fused_score.unwrap() - expected).abs() < 1e-6, "{h:?}");

    // RRF: rank 1 on one side only is half the top of the scale.
    let rrf = SearchRequest {
        fusion: Some(Fusion::Rrf),
        ..with_vector(None)
    };
    let rrf = c.search(&rrf).await.unwrap();
    let h = rrf.results.iter().find(|h| h.memory.id == far.id).unwrap();
    assert_eq!((h.keyword_rank, h.vector_rank), (Some(1), None));
    assert!((h.fused_score.unwrap() - 0.5).abs() < 1e-6);

    // Weighted fusion: alpha 1 is the vector order, alpha 0 puts the keyword find first.
    let weighted = |alpha| SearchRequest {
        fusion: Some(Fusion::Weighted),
        alpha: Some(alpha),
        ..with_vector(None)
    };
    let all_vector = c.search(&weighted(1.0)).await.unwrap();
    let ids = |r: &SearchResponse| r.results.iter().map(|h| h.memory.id).collect::<Vec<_>>();
    assert_eq!(ids(&all_vector)[..5], ids(&vector)[..5]);
    let all_keyword = c.search(&weighted(0.0)).await.unwrap();
    assert_eq!(all_keyword.results[0].memory.id, far.id);
}

#[tokio::test]
async fn keyword_search_honours_filters_visibility_and_takes_any_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let ns = "kw";
    for (user, text) in [
        ("alice", "Alice booked the dentist for Friday"),
        ("bob", "Bob booked the dentist for Monday"),
    ] {
        c.create(&NewMemory {
            user_id: Some(user.into()),
            ..memory(ns, text)
        })
        .await
        .unwrap();
    }
    private_note(&c, ns, "private dentist note").await;
    let mut only_bob = request(ns, "dentist", Some(SearchMode::Keyword));
    only_bob.filter = MemoryFilter {
        user_id: Some("bob".into()),
        ..MemoryFilter::default()
    };
    assert_eq!(
        texts(&c, &only_bob).await,
        vec!["Bob booked the dentist for Monday"]
    );
    let all = texts(&c, &request(ns, "dentist", Some(SearchMode::Keyword))).await;
    assert_eq!(
        all.len(),
        2,
        "another agent's private memory stays hidden: {all:?}"
    );
    // Stemming: "booking" finds "booked".
    assert_eq!(
        texts(
            &c,
            &request(ns, "booking friday", Some(SearchMode::Keyword))
        )
        .await[0],
        "Alice booked the dentist for Friday"
    );
    for q in [
        "\"dentist\"",
        "the the",
        "the of and dentist",
        "a",
        "*",
        "dentist AND NOT (friday OR",
        "🙂",
        "' OR 1=1 --",
        "\\u0000",
    ] {
        for mode in [SearchMode::Vector, SearchMode::Keyword, SearchMode::Hybrid] {
            let r = c.search(&request(ns, q, Some(mode))).await;
            assert!(r.is_ok(), "{q:?} in {mode:?}: {r:?}");
        }
    }
    assert!(
        texts(&c, &request(ns, "the of", Some(SearchMode::Keyword)))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn bad_search_parameters_are_400s_that_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let ns = "bad";
    c.create(&memory(ns, "something to find")).await.unwrap();
    let cases = [
        (
            SearchRequest {
                alpha: Some(1.5),
                ..request(ns, "x", None)
            },
            "alpha",
        ),
        (
            SearchRequest {
                rrf_k: Some(0),
                ..request(ns, "x", None)
            },
            "rrf_k",
        ),
        (
            SearchRequest {
                mmr: Some(Mmr { lambda: -0.1 }),
                ..request(ns, "x", None)
            },
            "mmr.lambda",
        ),
        (
            SearchRequest {
                namespace: ns.into(),
                vector: Some(axis(0, 1, 0.0)),
                mode: Some(SearchMode::Keyword),
                ..SearchRequest::default()
            },
            "mode",
        ),
    ];
    for (req, field) in cases {
        let e = c.search(&req).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // Nothing was lost.
    assert_eq!(
        texts(&c, &request(ns, "something", None)).await,
        vec!["something to find"]
    );
}

#[tokio::test]
async fn mmr_trades_near_duplicates_for_diversity() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let ns = "mmr";
    for text in [
        "Paris hotel booked near the Louvre for May",
        "Paris hotel booked near the Louvre for May, room 12",
        "Paris hotel booked near the Louvre for May, breakfast included",
        "Paris museum passes bought for the May trip",
    ] {
        c.create(&memory(ns, text)).await.unwrap();
    }
    let plain = texts(
        &c,
        &SearchRequest {
            top_k: Some(2),
            ..request(ns, "Paris hotel Louvre May", Some(SearchMode::Vector))
        },
    )
    .await;
    assert!(plain.iter().all(|t| t.contains("hotel")), "{plain:?}");
    let diverse = texts(
        &c,
        &SearchRequest {
            top_k: Some(2),
            mmr: Some(Mmr { lambda: 0.3 }),
            ..request(ns, "Paris hotel Louvre May", Some(SearchMode::Vector))
        },
    )
    .await;
    assert_eq!(diverse.len(), 2);
    assert!(
        diverse.iter().any(|t| t.contains("museum")),
        "MMR picks the different memory over a near duplicate: {diverse:?}"
    );
}

const TEMPLATE: &str = "[search]\ntemplate = \"{user_id} ({created_at:date}): {text}\"\n";

#[tokio::test]
async fn a_template_makes_who_and_when_searchable_and_a_change_reindexes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let ns = "ctx";
    let by_user = |q: &str| request(ns, q, Some(SearchMode::Keyword));

    // Plain template: the user's name is not in the text, so keyword search misses it.
    let s = Server::start(dir.path(), &config_toml(port, &data, None, ""));
    let c = s.client();
    let m = c
        .create(&NewMemory {
            user_id: Some("bartholomew".into()),
            ..memory(ns, "prefers the window seat")
        })
        .await
        .unwrap()
        .memory;
    assert!(texts(&c, &by_user("bartholomew")).await.is_empty());
    assert!(s.terminate().success());

    // Restart with a template: the memory is re-indexed in the background.
    let s = Server::start(dir.path(), &config_toml(port, &data, None, TEMPLATE));
    let c = s.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    while texts(&c, &by_user("bartholomew")).await.is_empty() {
        assert!(Instant::now() < deadline, "the memory was never re-indexed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let date = m.created_at.date().to_string();
    assert_eq!(
        texts(&c, &by_user(&date)).await,
        vec!["prefers the window seat"],
        "its date is searchable too"
    );
    let after = c.get(m.id).await.unwrap();
    assert_eq!(
        (after.text.as_str(), after.updated_at),
        ("prefers the window seat", m.updated_at),
        "re-indexing changes no user-visible field"
    );
    // New memories use the template at once (read-your-writes).
    c.create(&NewMemory {
        user_id: Some("cordelia".into()),
        ..memory(ns, "allergic to peanuts")
    })
    .await
    .unwrap();
    assert_eq!(
        texts(&c, &by_user("cordelia")).await,
        vec!["allergic to peanuts"]
    );
}

#[tokio::test]
async fn a_bad_template_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = config_dir(
        dir.path(),
        &config_toml(
            free_port(),
            &dir.path().join("data"),
            None,
            "[search.namespaces.x]\ntemplate = \"{user_id} {nope}\"\n",
        ),
    );
    let err = crate::support::refused_start(&config_dir, &[]);
    assert!(
        err.contains("search.namespaces.x.template") && err.contains("{nope}"),
        "{err}"
    );
}

#[tokio::test]
async fn a_text_search_leaves_out_what_matches_nothing_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    for text in ["Alice prefers green tea", "Bob drives a red Toyota"] {
        c.create(&memory("drinks", text)).await.unwrap();
    }
    // No word shared with either memory: whatever comes back relates to the
    // query somehow (score above 0); nothing is returned at score 0.
    let unrelated = request("drinks", "which hot beverage does she like", None);
    for mode in [None, Some(SearchMode::Vector), Some(SearchMode::Hybrid)] {
        let found = c
            .search(&SearchRequest {
                mode,
                ..unrelated.clone()
            })
            .await
            .unwrap();
        assert!(
            found.results.iter().all(|h| h.score > 0.0),
            "{mode:?}: {:?}",
            found.results
        );
    }
    // A shared word finds its memory first.
    assert_eq!(
        texts(&c, &request("drinks", "green tea please", None)).await[0],
        "Alice prefers green tea"
    );
    // min_score 0 asks for everything, scored as it is.
    let everything = c
        .search(&SearchRequest {
            min_score: Some(0.0),
            ..unrelated.clone()
        })
        .await
        .unwrap();
    assert_eq!(everything.results.len(), 2, "{:?}", everything.results);
    // took_ms has no float noise: a whole number of microseconds.
    let micros = everything.took_ms * 1e3;
    assert!(
        (micros - micros.round()).abs() < 1e-6,
        "{}",
        everything.took_ms
    );
}

#[tokio::test]
async fn bm25_parameters_come_from_the_namespace_or_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let repeated = c
        .create(&memory("bm", "tea tea tea tea"))
        .await
        .unwrap()
        .memory
        .id;
    c.create(&memory("bm", "tea with a biscuit")).await.unwrap();
    let ask = |bm25| SearchRequest {
        bm25,
        ..request("bm", "tea", Some(SearchMode::Keyword))
    };
    // Default k1 1.2: the repeated word counts more.
    let default = c.search(&ask(None)).await.unwrap();
    assert_eq!(default.results[0].memory.id, repeated);
    let scores: Vec<f32> = default
        .results
        .iter()
        .filter_map(|h| h.keyword_score)
        .collect();
    assert!(scores[0] > scores[1] * 1.2, "{scores:?}");
    // k1 0 and b 0: a word counts once, whatever the length.
    let flat = c
        .search(&ask(Some(Bm25Params { k1: 0.0, b: 0.0 })))
        .await
        .unwrap();
    let scores: Vec<f32> = flat
        .results
        .iter()
        .filter_map(|h| h.keyword_score)
        .collect();
    assert_eq!(scores.len(), 2);
    assert!((scores[0] - scores[1]).abs() < 1e-6, "{scores:?}");
    for (bad, field) in [((4.0, 0.5), "bm25.k1"), ((1.0, 1.5), "bm25.b")] {
        let err = c
            .search(&ask(Some(Bm25Params {
                k1: bad.0,
                b: bad.1,
            })))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[tokio::test]
async fn fields_cut_each_hit_to_what_was_named_and_a_bad_list_is_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "");
    let c = s.client();
    let ns = "fields";
    for (i, text) in ["tea with Alice", "tea with Bob", "coffee alone"]
        .into_iter()
        .enumerate()
    {
        let mut metadata = serde_json::Map::new();
        metadata.insert("i".into(), serde_json::json!(i));
        c.create(&NewMemory {
            metadata,
            ..memory(ns, text)
        })
        .await
        .unwrap();
    }
    private_note(&c, ns, "private tea note").await;
    let body = serde_json::json!({"namespace": ns, "query": "tea", "top_k": 10});
    let http = reqwest::Client::new();
    let post = |query: &'static str| {
        http.post(format!("{}/v1/memories/search{query}", s.url))
            .json(&body)
            .send()
    };
    let read = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    let (status, whole) = read(post("").await.unwrap()).await;
    assert_eq!(status, 200, "{whole}");
    let (status, cut) = read(post("?fields=text,metadata").await.unwrap()).await;
    assert_eq!(status, 200, "{cut}");

    // The same hits in the same order with the same scores; each memory
    // holds its id, text and metadata, as the whole search returned them.
    let (whole_hits, cut_hits) = (
        whole["results"].as_array().unwrap(),
        cut["results"].as_array().unwrap(),
    );
    assert_eq!(whole_hits.len(), cut_hits.len());
    assert!(cut_hits.len() >= 2, "{cut}");
    for (w, h) in whole_hits.iter().zip(cut_hits) {
        let memory = h["memory"].as_object().unwrap();
        let mut keys: Vec<&str> = memory.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["id", "metadata", "text"], "{h}");
        for key in keys {
            assert_eq!(memory[key], w["memory"][key], "{key}");
        }
        assert_eq!(h["score"], w["score"]);
        assert_eq!(h["similarity"], w["similarity"]);
        assert_eq!(h["keyword_rank"], w["keyword_rank"]);
        // Another agent's private memory is no more reachable cut than whole.
        assert_ne!(memory["text"], "private tea note");
    }
    assert_eq!(cut["plan"], whole["plan"]);
    assert_eq!(cut["mode"], whole["mode"]);

    // A bad list, an empty one or an unknown parameter: a 400 that says
    // what to send, before any search runs.
    for (query, says) in [
        ("?fields=text,txet", "\"txet\""),
        ("?fields=", "(empty)"),
        ("?feilds=text", "feilds"),
    ] {
        let (status, e) = read(post(query).await.unwrap()).await;
        assert_eq!(status, 400, "{query}: {e}");
        assert_eq!(e["error"]["code"], "invalid_argument", "{query}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    let (_, e) = read(post("?fields=txet").await.unwrap()).await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text, tags, metadata"),
        "the error lists the fields: {e}"
    );
    // Nothing was lost.
    assert_eq!(
        read(post("").await.unwrap()).await.1["results"],
        whole["results"]
    );
}
