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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
