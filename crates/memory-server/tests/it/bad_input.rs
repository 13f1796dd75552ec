//! Bad input gets the documented 4xx with an error body, and changes nothing;
//! search text is data, never syntax.

use crate::support::{Server, config_toml, free_port};
use memory_client::{ListMemories, NewMemory};
use reqwest::Method;
use serde_json::{Value, json};

const LIMITS: &str = "[limits]\nmax_body_bytes = 65536\nmax_text_chars = 1000\nmax_batch = 10\nmax_top_k = 100\nmax_metadata_bytes = 256\nmax_tags = 4\nmax_label_chars = 32\n";

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body: body.into(),
        headers: Vec::new(),
        status,
        code,
    }
}

fn json_body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_documented_4xx_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, LIMITS),
    );
    let c = server.client();
    let existing = c
        .create(&NewMemory {
            namespace: "ns".into(),
            text: "an existing memory".into(),
            ..NewMemory::default()
        })
        .await
        .unwrap()
        .memory;
    let id = existing.id;
    let snapshot = || async {
        c.list(&ListMemories {
            namespace: "ns".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap()
    };
    let before = snapshot().await;

    let dims = 384;
    let ok_memory = |extra: Value| {
        let mut m = json!({"namespace": "ns", "text": "valid text"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json_body(m)
    };
    let mut cases = vec![
        case(
            "malformed JSON",
            Method::POST,
            "/v1/memories",
            "{\"namespace\": ",
            400,
            "invalid_argument",
        ),
        case(
            "JSON NaN literal",
            Method::POST,
            "/v1/memories",
            "{\"namespace\":\"ns\",\"text\":\"x\",\"vector\":[NaN]}",
            400,
            "invalid_argument",
        ),
        case(
            "not an object",
            Method::POST,
            "/v1/memories",
            "[1,2]",
            400,
            "invalid_argument",
        ),
        case(
            "wrong type",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"text": 42})),
            400,
            "invalid_argument",
        ),
        case(
            "unknown field",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"txet": "typo"})),
            400,
            "invalid_argument",
        ),
        case(
            "empty text",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"text": ""})),
            400,
            "invalid_argument",
        ),
        case(
            "blank text",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"text": " \n\t "})),
            400,
            "invalid_argument",
        ),
        case(
            "text too long",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"text": "x".repeat(1001)})),
            400,
            "invalid_argument",
        ),
        case(
            "body too large",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"text": "y".repeat(70_000)})),
            413,
            "payload_too_large",
        ),
        case(
            "missing namespace",
            Method::POST,
            "/v1/memories",
            json_body(json!({"text": "x"})),
            400,
            "invalid_argument",
        ),
        case(
            "empty namespace",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"namespace": ""})),
            400,
            "invalid_argument",
        ),
        case(
            "namespace with NUL",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"namespace": "n\u{0}s"})),
            400,
            "invalid_argument",
        ),
        case(
            "namespace with spaces",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"namespace": "my ns"})),
            400,
            "invalid_argument",
        ),
        case(
            "tag with control char",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"tags": ["a\u{7}"]})),
            400,
            "invalid_argument",
        ),
        case(
            "empty tag",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"tags": [""]})),
            400,
            "invalid_argument",
        ),
        case(
            "too many tags",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"tags": ["a","b","c","d","e"]})),
            400,
            "invalid_argument",
        ),
        case(
            "metadata too large",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"metadata": {"k": "v".repeat(300)}})),
            400,
            "invalid_argument",
        ),
        case(
            "metadata not an object",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"metadata": [1]})),
            400,
            "invalid_argument",
        ),
        case(
            "unknown kind",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"kind": "dream"})),
            400,
            "invalid_argument",
        ),
        case(
            "expiry in the past",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"expires_at": "2001-01-01T00:00:00Z"})),
            400,
            "invalid_argument",
        ),
        case(
            "expiry not a time",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"expires_at": "tomorrow"})),
            400,
            "invalid_argument",
        ),
        case(
            "private without author",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"visibility": "private"})),
            400,
            "invalid_argument",
        ),
        case(
            "wrong-dimension vector",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"vector": [0.1, 0.2]})),
            400,
            "invalid_argument",
        ),
        case(
            "zero vector",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"vector": vec![0.0; dims]})),
            400,
            "invalid_argument",
        ),
        case(
            "huge number in vector",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"vector": [1e300]})),
            400,
            "invalid_argument",
        ),
        case(
            "batch over the limit",
            Method::POST,
            "/v1/memories",
            json_body(json!({"memories": vec![json!({"namespace":"ns","text":"t"}); 11]})),
            400,
            "invalid_argument",
        ),
        case(
            "empty batch",
            Method::POST,
            "/v1/memories",
            json_body(json!({"memories": []})),
            400,
            "invalid_argument",
        ),
        case(
            "batch with one bad entry",
            Method::POST,
            "/v1/memories",
            json_body(
                json!({"memories": [{"namespace":"ns","text":"good one"}, {"namespace":"ns","text":""}]}),
            ),
            400,
            "invalid_argument",
        ),
        case(
            "search top_k 0",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","top_k":0})),
            400,
            "invalid_argument",
        ),
        case(
            "search top_k 10^9",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","top_k":1_000_000_000u64})),
            400,
            "invalid_argument",
        ),
        case(
            "search top_k negative",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","top_k":-1})),
            400,
            "invalid_argument",
        ),
        case(
            "search without query or vector",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns"})),
            400,
            "invalid_argument",
        ),
        case(
            "keyword search with only a vector",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","mode":"keyword","vector":vec![0.5; dims]})),
            400,
            "invalid_argument",
        ),
        case(
            "search with an unknown mode",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","mode":"fuzzy"})),
            400,
            "invalid_argument",
        ),
        case(
            "search with alpha out of range",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","fusion":"weighted","alpha":2})),
            400,
            "invalid_argument",
        ),
        case(
            "search with a bad mmr lambda",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","mmr":{"lambda":1.5}})),
            400,
            "invalid_argument",
        ),
        case(
            "search empty query",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":""})),
            400,
            "invalid_argument",
        ),
        case(
            "search wrong-dimension vector",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","vector":[1.0]})),
            400,
            "invalid_argument",
        ),
        case(
            "search bad recency",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","recency":{"half_life_hours":-1}})),
            400,
            "invalid_argument",
        ),
        case(
            "search recency weight 2",
            Method::POST,
            "/v1/memories/search",
            json_body(
                json!({"namespace":"ns","query":"x","recency":{"half_life_hours":1,"weight":2}}),
            ),
            400,
            "invalid_argument",
        ),
        case(
            "search metadata filter on an object",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"ns","query":"x","filter":{"metadata":{"k":{"a":1}}}})),
            400,
            "invalid_argument",
        ),
        case(
            "search bad namespace",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace":"a/b","query":"x"})),
            400,
            "invalid_argument",
        ),
        case(
            "get invalid id",
            Method::GET,
            "/v1/memories/not-a-uuid",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "get unknown id",
            Method::GET,
            "/v1/memories/00000000-0000-7000-8000-000000000000",
            "",
            404,
            "not_found",
        ),
        case(
            "list without namespace",
            Method::GET,
            "/v1/memories",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "list bad cursor",
            Method::GET,
            "/v1/memories?namespace=ns&cursor=garbage",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "list limit 0",
            Method::GET,
            "/v1/memories?namespace=ns&limit=0",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "list limit not a number",
            Method::GET,
            "/v1/memories?namespace=ns&limit=ten",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "list unknown parameter",
            Method::GET,
            "/v1/memories?namespace=ns&colour=red",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "list unknown kind",
            Method::GET,
            "/v1/memories?namespace=ns&kind=dream",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "patch empty text",
            Method::PATCH,
            &format!("/v1/memories/{id}"),
            json_body(json!({"text": ""})),
            400,
            "invalid_argument",
        ),
        case(
            "patch unknown field",
            Method::PATCH,
            &format!("/v1/memories/{id}"),
            json_body(json!({"colour": "red"})),
            400,
            "invalid_argument",
        ),
        case(
            "patch stale version",
            Method::PATCH,
            &format!("/v1/memories/{id}"),
            json_body(json!({"text": "new", "version": 999_999})),
            412,
            "precondition_failed",
        ),
        case(
            "bulk delete bad filter",
            Method::POST,
            "/v1/memories/delete",
            json_body(json!({"namespace":"ns","filter":{"tags_any":[""]}})),
            400,
            "invalid_argument",
        ),
        case(
            "unknown endpoint",
            Method::GET,
            "/v1/nothing",
            "",
            404,
            "not_found",
        ),
        // serde would read a struct from an array of its fields in order.
        case(
            "an array in place of a memory",
            Method::POST,
            "/v1/memories",
            json_body(json!(["ns", "created from an array"])),
            400,
            "invalid_argument",
        ),
        case(
            "an array in place of a patch",
            Method::PATCH,
            &format!("/v1/memories/{id}"),
            json_body(json!(["replaced", ["t1"]])),
            400,
            "invalid_argument",
        ),
        case(
            "an array in place of a search",
            Method::POST,
            "/v1/memories/search",
            json_body(json!(["ns", "query"])),
            400,
            "invalid_argument",
        ),
        // ...and nested: wherever the published schema has an object.
        case(
            "an array in place of a memory in a batch",
            Method::POST,
            "/v1/memories",
            json_body(json!({"memories": [["ns", "created from an array"]]})),
            400,
            "invalid_argument",
        ),
        case(
            "session data nested past the limit",
            Method::PUT,
            "/v1/sessions/deep",
            format!(
                "{{\"namespace\":\"ns\",\"data\":{}1{}}}",
                "[".repeat(124),
                "]".repeat(124)
            ),
            400,
            "invalid_argument",
        ),
        case(
            "an array in place of a search filter",
            Method::POST,
            "/v1/memories/search",
            json_body(json!({"namespace": "ns", "query": "q", "filter": ["a"]})),
            400,
            "invalid_argument",
        ),
        case(
            "an array in place of a bulk delete filter",
            Method::POST,
            "/v1/memories/delete",
            json_body(json!({"namespace": "ns", "filter": [null, null, "agent"]})),
            400,
            "invalid_argument",
        ),
        case(
            "an array in place of session messages' entries",
            Method::POST,
            "/v1/sessions/s1/messages",
            json_body(json!({"namespace": "ns", "messages": [["user", "hi"]]})),
            400,
            "invalid_argument",
        ),
        case(
            "text of control characters only",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"text": "\u{0}\u{1}"})),
            400,
            "invalid_argument",
        ),
        case(
            "metadata nested past the limit",
            Method::POST,
            "/v1/memories",
            format!(
                "{{\"namespace\":\"ns\",\"text\":\"x\",\"metadata\":{{\"a\":{}1{}}}}}",
                "[".repeat(40),
                "]".repeat(40)
            ),
            400,
            "invalid_argument",
        ),
        case(
            "agent `*`",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({"agent_id": "*", "visibility": "private"})),
            400,
            "invalid_argument",
        ),
        case(
            "a path id that is not UTF-8",
            Method::GET,
            "/v1/memories/%FF",
            "",
            400,
            "invalid_argument",
        ),
        case(
            "a method the path does not take",
            Method::PUT,
            "/v1/memories",
            ok_memory(json!({})),
            405,
            "method_not_allowed",
        ),
    ];
    cases.push(Case {
        content_type: None,
        ..case(
            "no content type",
            Method::POST,
            "/v1/memories",
            ok_memory(json!({})),
            400,
            "invalid_argument",
        )
    });
    cases.push(Case {
        headers: vec![("if-match", "not-a-version")],
        ..case(
            "If-Match garbage",
            Method::PATCH,
            &format!("/v1/memories/{id}"),
            json_body(json!({"text": "x"})),
            400,
            "invalid_argument",
        )
    });
    cases.push(Case {
        headers: vec![("if-match", "\"12345\"")],
        ..case(
            "If-Match stale",
            Method::DELETE,
            &format!("/v1/memories/{id}"),
            "",
            412,
            "precondition_failed",
        )
    });

    let http = reqwest::Client::new();
    for c in &cases {
        let mut r = http
            .request(c.method.clone(), format!("{}{}", server.url, c.path))
            .body(c.body.clone());
        if let Some(ct) = c.content_type {
            r = r.header("content-type", ct);
        }
        for (k, v) in &c.headers {
            r = r.header(*k, *v);
        }
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert_eq!(body["error"]["code"], c.code, "{}: {body}", c.name);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}: the error says what to fix",
            c.name
        );
    }
    assert_eq!(
        snapshot().await,
        before,
        "rejected requests changed nothing"
    );
    assert_eq!(c.get(id).await.unwrap(), existing);

    // An empty PATCH changes nothing: no new version, no history entry.
    let history = c.history(id).await.unwrap().revisions.len();
    let same = c
        .update(id, &memory_client::MemoryPatch::default(), None)
        .await
        .unwrap();
    assert_eq!(same, existing);
    assert_eq!(c.history(id).await.unwrap().revisions.len(), history);

    // Metadata at the deepest allowed nesting stays readable after changes
    // (stored, it sits deeper still, inside each history entry).
    let deep: serde_json::Map<String, Value> =
        serde_json::from_str(&format!("{{\"a\":{}1{}}}", "[".repeat(31), "]".repeat(31))).unwrap();
    let nested = c
        .create(&NewMemory {
            namespace: "deep".into(),
            text: "deeply nested metadata".into(),
            metadata: deep,
            ..NewMemory::default()
        })
        .await
        .unwrap()
        .memory;
    for text in ["changed once", "changed twice"] {
        let patch = memory_client::MemoryPatch {
            text: Some(text.into()),
            ..memory_client::MemoryPatch::default()
        };
        c.update(nested.id, &patch, None).await.unwrap();
    }
    assert_eq!(c.get(nested.id).await.unwrap().text, "changed twice");
    assert_eq!(c.history(nested.id).await.unwrap().revisions.len(), 3);

    // Odd but valid Unicode is data, stored and returned exactly.
    for text in [
        "שלום עולם",
        "🙂🙃",
        "e\u{301}",
        "\u{200b}zero width",
        "tab\tand\nnewline",
    ] {
        let m = c
            .create(&NewMemory {
                namespace: "odd".into(),
                text: text.into(),
                ..NewMemory::default()
            })
            .await
            .unwrap()
            .memory;
        assert_eq!(c.get(m.id).await.unwrap().text, text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_text_is_data_never_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, ""),
    );
    let c = server.client();
    for text in [
        "the meeting is at noon",
        "Alice's \"quoted\" preference",
        "a",
    ] {
        c.create(&NewMemory {
            namespace: "q".into(),
            text: text.into(),
            ..NewMemory::default()
        })
        .await
        .unwrap();
    }
    let queries = [
        "\"quoted phrase\"",
        "AND OR NOT",
        "title:foo AND -bar",
        "*",
        "?",
        "!!!",
        "((()))",
        "the of and",
        "the the",
        "a",
        "I",
        "'; DROP TABLE memories; --",
        "{\"$ne\": null}",
        "\\",
        "%s %n",
        "🙂",
        "@@@ ### $$$",
        "NEAR/3",
        "~fuzzy^2",
    ];
    let http = reqwest::Client::new();
    for q in queries {
        let r = http
            .post(format!("{}/v1/memories/search", server.url))
            .json(&json!({"namespace": "q", "query": q}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "query {q:?}");
        let body: Value = r.json().await.unwrap();
        assert!(body["results"].is_array(), "query {q:?}: {body}");
    }
    // Searching a namespace nobody wrote to is an empty result, not an error.
    let r = http
        .post(format!("{}/v1/memories/search", server.url))
        .json(&json!({"namespace": "never-written", "query": "anything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"], json!([]));
}
