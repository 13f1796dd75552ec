//! End-to-end: the real `ann-bench` binary on a small generated dataset.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::path::Path;
use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ann-bench"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ann-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn generates_a_dataset_and_writes_one_json_object_per_measurement() {
    let dir = temp_dir("ok");
    let json = dir.join("out.jsonl");
    let out = bench()
        .args([
            "--n",
            "2000",
            "--dim",
            "16",
            "--queries",
            "50",
            "--ef",
            "16,64",
        ])
        .arg("--out-dir")
        .arg(&dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = test_support::succeeded(&out);
    assert!(
        stdout.contains("== hnsw") && stdout.contains("== usearch"),
        "{stdout}"
    );

    // The generated dataset is in the documented format.
    let data = dir.join("synthetic-2000x16-q50-seed42");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["dim"], 16);
    assert_eq!(meta["metric"], "cosine");
    let gt_k = meta["gt_k"].as_u64().unwrap();
    assert_eq!(
        std::fs::metadata(data.join("base.f32")).unwrap().len(),
        2000 * 16 * 4
    );
    assert_eq!(
        std::fs::metadata(data.join("gt.i32")).unwrap().len(),
        50 * gt_k * 4
    );

    let rows = lines(&json);
    for backend in ["hnsw", "usearch"] {
        let unfiltered: Vec<_> = rows
            .iter()
            .filter(|r| {
                r["backend"] == backend && r.get("selectivity").is_none() && r.get("ef").is_some()
            })
            .collect();
        assert_eq!(unfiltered.len(), 2, "{backend}: one row per ef");
        for r in &unfiltered {
            for field in [
                "recall_at_10",
                "qps",
                "p50_us",
                "p99_us",
                "build_s",
                "inserts_per_s",
                "bytes_per_vector",
            ] {
                assert!(
                    r[field].as_f64().is_some_and(|v| v >= 0.0),
                    "{backend} {field}: {r}"
                );
            }
        }
        // At ef 64 on 2000 clustered points both graphs find (nearly) everything.
        assert!(
            unfiltered[1]["recall_at_10"].as_f64().unwrap() >= 0.9,
            "{backend}"
        );
        let filtered: Vec<_> = rows
            .iter()
            .filter(|r| r["backend"] == backend && r.get("selectivity").is_some())
            .collect();
        assert_eq!(
            filtered.len(),
            15,
            "{backend}: 5 selectivities x 3 strategies"
        );
        for r in filtered {
            assert!(r["plan"].is_string());
            if r["strategy"] == "exact" {
                assert_eq!(r["recall_at_10"], 1.0, "exact scans are exact: {r}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_broken_dataset_is_a_clear_error() {
    let dir = temp_dir("bad");
    std::fs::write(
        dir.join("meta.json"),
        r#"{"dim": 4, "n_base": 10, "n_queries": 2, "gt_k": 10, "metric": "cosine"}"#,
    )
    .unwrap();
    std::fs::write(dir.join("base.f32"), [0u8; 12]).unwrap();
    let out = bench()
        .arg("--dataset")
        .arg(&dir)
        .arg("--backend")
        .arg("usearch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("base.f32") && stderr.contains("expected 40 float32 values"),
        "{stderr}"
    );

    let out = bench()
        .args([
            "--backend",
            "faiss",
            "--n",
            "100",
            "--dim",
            "4",
            "--queries",
            "5",
        ])
        .arg("--out-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend `faiss`"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The generated-data flags of a small clustered set in `dir`.
fn small_set(cmd: &mut Command, dir: &Path) {
    cmd.args(["--n", "2000", "--dim", "16", "--queries", "50"])
        .arg("--out-dir")
        .arg(dir);
}

#[test]
fn paired_graphs_each_keep_their_own_settings_in_one_run() {
    let dir = temp_dir("paired");
    let json = dir.join("paired.jsonl");
    let mut cmd = bench();
    small_set(&mut cmd, &dir);
    let out = cmd
        .args([
            "--paired",
            "f16,i8:efc=32:ef=64",
            "--ef",
            "16",
            "--paired-rounds",
            "3",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    test_support::succeeded(&out);
    let rows = lines(&json);
    assert_eq!(rows.len(), 2, "one row per graph: {rows:?}");
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!(first["system"], "f16");
    assert_eq!(first["quantization"], "f16");
    assert_eq!(
        (first["ef"].as_u64(), first["ef_construction"].as_u64()),
        (Some(16), Some(128))
    );
    assert_eq!(second["system"], "i8:efc=32:ef=64");
    assert_eq!(second["quantization"], "i8");
    assert_eq!(
        (second["ef"].as_u64(), second["ef_construction"].as_u64()),
        (Some(64), Some(32))
    );
    // Its own width, four times the first's, finds (nearly) everything here.
    assert!(second["recall_at_10"].as_f64().unwrap() >= 0.9, "{second}");
    let rounds = second["speed_vs_first_rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    assert!(rounds.iter().all(|r| r.as_f64().is_some_and(|r| r > 0.0)));

    for (bad, says) in [
        ("f16:efc=0", "`efc=0` wants a number above 0"),
        (
            "f16:m=8",
            "want QUANT[:efc=N][:ef=N][:backend=NAME], not `m=8`",
        ),
        ("f16:backend=faiss", "unknown backend `faiss`"),
        ("f8", "unknown quantization `f8`"),
    ] {
        let mut cmd = bench();
        small_set(&mut cmd, &dir);
        let out = cmd.args(["--paired", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_answers_slices_of_queries_and_names_what_is_wrong_with_a_bad_line() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let dir = temp_dir("serve");
    let mut cmd = bench();
    small_set(&mut cmd, &dir);
    let mut child = cmd
        .args([
            "--serve",
            "--quantization",
            "f16",
            "--ef-construction",
            "32",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready 2000 16");
    let mut ask = |line: &str| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        answer.trim().to_owned()
    };

    let answer = ask("64 0 50");
    let (secs, hits) = answer.split_once(' ').unwrap();
    assert!(secs.parse::<f64>().unwrap() > 0.0, "{answer}");
    let hits: usize = hits.parse().unwrap();
    assert!(
        (450..=500).contains(&hits),
        "50 queries at ef 64 find most of their 500 exact neighbours: {hits}"
    );
    // A slice finds what its queries find, whatever slices came before.
    let (a, b) = (ask("64 0 20"), ask("64 20 50"));
    let part = |s: &str| s.split_once(' ').unwrap().1.parse::<usize>().unwrap();
    assert_eq!(part(&a) + part(&b), hits);

    for (bad, says) in [
        ("0 0 5", "want EF > 0 and FROM < TO <= 50"),
        ("16 5 5", "want EF > 0 and FROM < TO <= 50"),
        ("16 0 51", "want EF > 0 and FROM < TO <= 50"),
        ("16 0", "want `EF FROM TO`"),
        ("sixteen 0 5", "not a number: \"sixteen\""),
    ] {
        let answer = ask(bad);
        assert!(
            answer.starts_with("error: ") && answer.contains(says),
            "{bad}: {answer}"
        );
    }
    // And it still answers after them.
    assert_eq!(part(&ask("64 0 20")), part(&a));
    drop(stdin);
    assert!(
        child.wait().unwrap().success(),
        "end of input ends it cleanly"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
