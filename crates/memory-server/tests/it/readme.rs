//! The README's curl walkthrough works as written, against the real binary.

use crate::support::{Server, config_toml, free_port};
use memory_client::ListMemories;

/// The first ```sh block after the `## Walkthrough` heading.
fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## Walkthrough")
        .nth(1)
        .expect("README has a Walkthrough section");
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let len = section[start..].find("```").expect("the block ends");
    section[start..start + len].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, ""),
    );
    let script = walkthrough();
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("BASE", &server.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("\"error\""), "{stdout}");
    // Each JSON response ends with a newline, so curl's outputs do not run together.
    assert!(!stdout.contains("}{"), "{stdout}");
    // The search for "what does Alice drink?" finds the tea memory first.
    let search = stdout
        .lines()
        .find(|l| l.contains("\"mode\":\"hybrid\""))
        .unwrap_or_else(|| panic!("no hybrid search output: {stdout}"));
    let tea = search.find("green tea").unwrap_or(usize::MAX);
    assert!(
        tea < search.find("staging deploy").unwrap_or(usize::MAX),
        "{search}"
    );
    assert!(stdout.contains("\"plan\":\"exact\""), "{stdout}");
    assert!(
        stdout.contains("\"mode\":\"keyword\",\"plan\":\"bm25\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"keyword_rank\":1"), "{stdout}");
    assert!(stdout.contains("Alice now prefers oolong tea"), "{stdout}");
    assert!(stdout.trim_end().ends_with("204"), "{stdout}");
    // What the walkthrough leaves: the deploy memory; the tea memory is deleted.
    let left = server
        .client()
        .list(&ListMemories {
            namespace: "demo".into(),
            ..ListMemories::default()
        })
        .await
        .unwrap();
    let texts: Vec<&str> = left.memories.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["The staging deploy failed at 14:02"]);
}
