//! Layered configuration into a service's own typed struct, loaded once.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// Loads `defaults`, then `<dir>/default.toml`, then `<dir>/<env>.toml` (when
/// `env` is given; it must exist), then `<prefix>__SECTION__KEY` variables,
/// then `PORT` as `server.port` (what Cloud Run sets). Unknown keys are
/// errors when the struct denies them; the message names the key.
pub fn load<C: Serialize + DeserializeOwned>(
    defaults: C,
    dir: &Path,
    env: Option<&str>,
    prefix: &str,
) -> Result<C, Error> {
    layered(
        defaults,
        dir,
        "default.toml",
        |env| format!("{env}.toml"),
        env,
        prefix,
    )
}

/// As [`load`], for a service whose files in `dir` are `<name>.toml` and
/// `<name>.<env>.toml` (a second service sharing the configuration directory).
pub fn load_named<C: Serialize + DeserializeOwned>(
    defaults: C,
    dir: &Path,
    name: &str,
    env: Option<&str>,
    prefix: &str,
) -> Result<C, Error> {
    layered(
        defaults,
        dir,
        &format!("{name}.toml"),
        |env| format!("{name}.{env}.toml"),
        env,
        prefix,
    )
}

fn layered<C: Serialize + DeserializeOwned>(
    defaults: C,
    dir: &Path,
    base: &str,
    env_file: impl Fn(&str) -> String,
    env: Option<&str>,
    prefix: &str,
) -> Result<C, Error> {
    let mut figment =
        Figment::from(Serialized::defaults(defaults)).merge(Toml::file(dir.join(base)));
    if let Some(env) = env {
        let file = dir.join(env_file(env));
        if !file.exists() {
            return Err(Error::Config(format!(
                "environment `{env}` has no file {}",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment
        .merge(Env::prefixed(&format!("{prefix}__")).split("__"))
        .merge(Env::raw().only(&["PORT"]).map(|_| "server.port".into()))
        .extract()
        .map_err(|e| Error::Config(e.to_string()))
}
