//! The agents file (`config/agents.toml`): models, agents and tools, read
//! and checked once at start.
//!
//! Unknown fields are refused, every reference (an agent's model, its tools,
//! a router's routes, a pipeline's steps) must resolve, composite agents may
//! not contain themselves, and every error names the line it is about.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use orchestrator_api::{Agent as AgentInfo, AgentKind};
use providers::chat::{ChatModel, ChatModelConfig};
use serde::Deserialize;
use toml::Spanned;

use crate::mcp_tools::{McpServerConfig, McpServers};
use crate::memory::RecallOptions;
use crate::tools::BUILTIN_TOOLS;

/// The agents file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsFile {
    /// The model of `llm` agents that name none (change this one line to
    /// move every agent to another model).
    #[serde(default)]
    pub default_model: Option<Spanned<String>>,
    /// Models by name.
    #[serde(default)]
    pub models: BTreeMap<String, ChatModelConfig>,
    /// Agents by name.
    #[serde(default)]
    pub agents: BTreeMap<String, Spanned<AgentConfig>>,
    /// Remote MCP servers whose tools agents may use, by name.
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
}

/// One agent as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Its kind.
    pub kind: AgentKind,
    /// What it is for (shown in `GET /v1/agents`, and a router's fallback
    /// matches inputs against its routes' descriptions).
    #[serde(default)]
    pub description: String,
    /// `llm`, `router`: the model.
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    /// `llm`: the system instruction.
    #[serde(default)]
    pub instruction: String,
    /// `llm`: tools it may call.
    #[serde(default)]
    pub tools: Vec<Spanned<String>>,
    /// `llm`: tools whose calls wait for a person's approval (`interrupt`,
    /// then `POST .../resume`); only on agents that are not a step of another.
    #[serde(default)]
    pub approval: Vec<Spanned<String>>,
    /// `llm`: most model calls in one turn (tool loops included).
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// `llm`: longest time for the whole agent, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// `llm`: what memory it recalls before each model call.
    #[serde(default)]
    pub memory: MemoryPolicy,
    /// `llm`: put the answer in the run's state under this key.
    #[serde(default)]
    pub output_key: Option<String>,
    /// `router`: the agents it may choose.
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    /// `sequential`, `loop`: agents run in order; `parallel`: agents run at once.
    #[serde(default)]
    pub steps: Vec<Spanned<String>>,
    /// `parallel`: the agent that answers from the branches' answers.
    #[serde(default)]
    pub join: Option<Spanned<String>>,
    /// `loop`: most passes over `steps`.
    #[serde(default = "default_iterations")]
    pub max_iterations: u32,
    /// `loop`: stop once the run's state has this key set to something
    /// other than `false`, `null` or `""` (an agent's `output_key`).
    #[serde(default)]
    pub until_key: Option<String>,
}

fn default_max_steps() -> u32 {
    8
}
fn default_iterations() -> u32 {
    3
}

/// What an `llm` agent recalls from memory-server before each model call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryPolicy {
    /// Search long-term memories with the latest user message.
    pub recall: bool,
    /// Memories to retrieve.
    pub top_k: usize,
    /// Characters of memory text to put in front of the model, at most.
    pub max_chars: usize,
    /// Leave out memories scoring below this.
    pub min_score: f32,
    /// The search options of memory-server's `POST /v1/memories/search`
    /// (and MCP `memory_search`), passed as they are; absent ones take the
    /// namespace's defaults.
    /// `vector`, `keyword` or `hybrid`.
    pub mode: Option<memory_client::SearchMode>,
    /// Hybrid: `weighted` or `rrf`.
    pub fusion: Option<memory_client::Fusion>,
    /// Weighted fusion: the vector side's share.
    pub alpha: Option<f32>,
    /// Each memory's neighbouring conversation turns, e.g. `{ before = 1, after = 1 }`.
    pub context_window: Option<memory_client::ContextWindow>,
    /// At most this many memories from one session.
    pub max_per_session: Option<u32>,
    /// A time named in the query: `boost`, `filter` or `off`.
    pub query_time: Option<memory_client::QueryTime>,
    /// Pseudo-relevance feedback, e.g. `{ docs = 3, terms = 5, weight = 0.3 }`.
    pub feedback: Option<memory_client::Feedback>,
    /// Entity-aware scoring's share of the score, 0 to 1.
    pub entity_weight: Option<f32>,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        Self {
            recall: true,
            top_k: 5,
            max_chars: 2000,
            min_score: 0.0,
            mode: None,
            fusion: None,
            alpha: None,
            context_window: None,
            max_per_session: None,
            query_time: None,
            feedback: None,
            entity_weight: None,
        }
    }
}

impl MemoryPolicy {
    /// The search its recall runs.
    pub fn recall_options(&self) -> RecallOptions {
        RecallOptions {
            top_k: self.top_k,
            min_score: self.min_score,
            mode: self.mode,
            fusion: self.fusion,
            alpha: self.alpha,
            context_window: self.context_window,
            max_per_session: self.max_per_session,
            query_time: self.query_time,
            feedback: self.feedback,
            entity_weight: self.entity_weight,
        }
    }
}

/// A checked agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its name.
    pub name: String,
    /// As written (references checked).
    pub config: AgentConfig,
}

impl Agent {
    /// The names of the agents it delegates to, in order.
    pub fn sub_agents(&self) -> Vec<String> {
        let c = &self.config;
        c.routes
            .iter()
            .chain(&c.steps)
            .chain(c.join.iter())
            .map(|s| s.get_ref().clone())
            .collect()
    }

    /// Its tool names.
    pub fn tools(&self) -> Vec<String> {
        self.config
            .tools
            .iter()
            .map(|t| t.get_ref().clone())
            .collect()
    }

    /// Its model's name.
    pub fn model(&self) -> Option<&str> {
        self.config.model.as_ref().map(|m| m.get_ref().as_str())
    }
}

/// A configured model.
pub struct Model {
    /// The model.
    pub chat: Arc<dyn ChatModel>,
    /// Its settings (prices, temperature).
    pub config: ChatModelConfig,
}

/// Every agent and model, checked.
pub struct Agents {
    agents: BTreeMap<String, Agent>,
    models: BTreeMap<String, Model>,
    /// The remote MCP servers.
    pub mcp: McpServers,
}

/// A bad agents file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct AgentsError {
    /// The file.
    pub file: String,
    /// What is wrong, with the line.
    pub message: String,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Agents {
    /// Reads and checks `path`, building each model.
    pub fn load(path: &Path) -> Result<Self, AgentsError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AgentsError {
            file: file.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text).map_err(|message| AgentsError { file, message })
    }

    /// Checks the agents file `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed: AgentsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let at = |span: std::ops::Range<usize>| format!("line {}", line_of(text, span.start));
        let mut models = BTreeMap::new();
        for (name, config) in &parsed.models {
            config.check().map_err(|e| format!("models.{name}: {e}"))?;
            let chat = providers::chat::config::from_config(name, config)
                .map_err(|e| format!("models.{name}: {e}"))?;
            models.insert(
                name.clone(),
                Model {
                    chat,
                    config: config.clone(),
                },
            );
        }
        if let Some(m) = &parsed.default_model
            && !models.contains_key(m.get_ref())
        {
            return Err(format!(
                "default_model ({}): model `{}` is not defined under [models]",
                at(m.span()),
                m.get_ref()
            ));
        }
        for (name, server) in &parsed.mcp_servers {
            if !valid_name(name) || name.contains(crate::mcp_tools::MODEL_SEPARATOR) {
                return Err(format!(
                    "mcp_servers.{name}: server names are letters, digits, `-` and single `_`"
                ));
            }
            server
                .check()
                .map_err(|e| format!("mcp_servers.{name}: {e}"))?;
        }
        let mcp = McpServers::new(&parsed.mcp_servers);
        let names: HashSet<&str> = parsed.agents.keys().map(String::as_str).collect();
        let mut agents = BTreeMap::new();
        for (name, spanned) in &parsed.agents {
            let where_ = at(spanned.span());
            let mut c = spanned.get_ref().clone();
            if c.kind == AgentKind::Llm && c.model.is_none() {
                c.model = parsed.default_model.clone();
            }
            let c = &c;
            let bad = |m: String| format!("agents.{name} ({where_}): {m}");
            if !valid_name(name) {
                return Err(bad(
                    "agent names are letters, digits, `-` and `_`, at most 64".into(),
                ));
            }
            if let Some(model) = &c.model
                && !models.contains_key(model.get_ref())
            {
                return Err(format!(
                    "agents.{name} ({}): model `{}` is not defined under [models]",
                    at(model.span()),
                    model.get_ref()
                ));
            }
            for tool in &c.tools {
                let t = tool.get_ref().as_str();
                let remote = t
                    .split_once('.')
                    .is_some_and(|(server, tool)| mcp.allows(server, tool));
                if !BUILTIN_TOOLS.contains(&t) && !remote {
                    return Err(format!(
                        "agents.{name} ({}): tool `{t}` does not exist; built-in tools: {}; \
                         remote tools are `<server>.<tool>` with the tool in that \
                         [mcp_servers.<server>] `tools` list",
                        at(tool.span()),
                        BUILTIN_TOOLS.join(", ")
                    ));
                }
            }
            for sub in c.routes.iter().chain(&c.steps).chain(c.join.iter()) {
                if !names.contains(sub.get_ref().as_str()) {
                    return Err(format!(
                        "agents.{name} ({}): agent `{}` is not defined",
                        at(sub.span()),
                        sub.get_ref()
                    ));
                }
            }
            for t in &c.approval {
                if !c.tools.iter().any(|x| x.get_ref() == t.get_ref()) {
                    return Err(format!(
                        "agents.{name} ({}): approval names `{}`, which is not one of its tools",
                        at(t.span()),
                        t.get_ref()
                    ));
                }
            }
            let needs = |ok: bool, what: &str| if ok { Ok(()) } else { Err(bad(what.into())) };
            match c.kind {
                AgentKind::Llm => {
                    needs(c.model.is_some(), "an llm agent needs `model`")?;
                    needs(
                        c.routes.is_empty() && c.steps.is_empty() && c.join.is_none(),
                        "an llm agent has no routes, steps or join",
                    )?;
                    needs(c.max_steps >= 1, "max_steps must be at least 1")?;
                }
                AgentKind::Router => {
                    needs(!c.routes.is_empty(), "a router needs `routes`")?;
                    needs(c.tools.is_empty(), "a router has no tools")?;
                }
                AgentKind::Sequential | AgentKind::Loop => {
                    needs(!c.steps.is_empty(), "it needs `steps`")?;
                    needs(
                        c.model.is_none() && c.tools.is_empty(),
                        "it has no model or tools (its steps do)",
                    )?;
                    needs(c.max_iterations >= 1, "max_iterations must be at least 1")?;
                }
                AgentKind::Parallel => {
                    needs(
                        !c.steps.is_empty(),
                        "a parallel agent needs `steps` (its branches)",
                    )?;
                    needs(
                        c.model.is_none() && c.tools.is_empty(),
                        "it has no model or tools (its steps do)",
                    )?;
                }
            }
            agents.insert(
                name.clone(),
                Agent {
                    name: name.clone(),
                    config: c.clone(),
                },
            );
        }
        let this = Self {
            agents,
            models,
            mcp,
        };
        // A paused agent is resumed on its own: one inside another agent
        // would need the outer agent's place kept too.
        for agent in this.agents.values() {
            for sub in agent.sub_agents() {
                if let Some(inner) = this.agents.get(&sub)
                    && let Some(first) = inner.config.approval.first()
                {
                    return Err(format!(
                        "agents.{sub} ({}): an agent with `approval` tools cannot be a step of \
                         another agent ({} uses it); run it directly",
                        at(first.span()),
                        agent.name
                    ));
                }
            }
        }
        for name in this.agents.keys() {
            this.check_acyclic(name, &mut Vec::new())?;
        }
        Ok(this)
    }

    /// Refuses an agent that contains itself, naming the cycle.
    fn check_acyclic(&self, name: &str, path: &mut Vec<String>) -> Result<(), String> {
        if path.iter().any(|p| p == name) {
            path.push(name.to_owned());
            return Err(format!("agents contain themselves: {}", path.join(" -> ")));
        }
        path.push(name.to_owned());
        if let Some(agent) = self.agents.get(name) {
            for sub in agent.sub_agents() {
                self.check_acyclic(&sub, path)?;
            }
        }
        path.pop();
        Ok(())
    }

    /// The agent `name`.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.get(name)
    }

    /// The model `name`.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// What `GET /v1/agents` shows.
    pub fn describe(&self) -> Vec<AgentInfo> {
        self.agents.values().map(describe).collect()
    }

    /// How `name` is shown, if it exists.
    pub fn describe_one(&self, name: &str) -> Option<AgentInfo> {
        self.agents.get(name).map(describe)
    }
}

fn describe(a: &Agent) -> AgentInfo {
    AgentInfo {
        name: a.name.clone(),
        kind: a.config.kind,
        description: a.config.description.clone(),
        model: a.model().map(str::to_owned),
        tools: a.tools(),
        sub_agents: a.sub_agents(),
    }
}

/// Whether `name` is a usable agent name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "[models.m]\nprovider = \"scripted\"\n";

    fn error(text: &str) -> String {
        match Agents::parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn an_unknown_field_names_its_line() {
        let e = error(&format!(
            "{MODEL}\n[agents.a]\nkind = \"llm\"\nmodel = \"m\"\ninstructions = \"typo\"\n"
        ));
        assert!(e.contains("instructions") && e.contains("line 7"), "{e}");
    }

    #[test]
    fn references_must_resolve_and_name_their_line() {
        let e = error(&format!(
            "{MODEL}\n[agents.a]\nkind = \"llm\"\nmodel = \"nope\"\n"
        ));
        assert!(e.contains("model `nope`") && e.contains("line 6"), "{e}");
        let e = error(&format!(
            "{MODEL}\n[agents.a]\nkind = \"sequential\"\nsteps = [\"b\"]\n"
        ));
        assert!(
            e.contains("agent `b` is not defined") && e.contains("line 6"),
            "{e}"
        );
        let e = error(&format!(
            "{MODEL}\n[agents.a]\nkind = \"llm\"\nmodel = \"m\"\ntools = [\"rm_rf\"]\n"
        ));
        assert!(e.contains("tool `rm_rf`"), "{e}");
    }

    #[test]
    fn remote_tools_must_be_on_their_servers_allowlist() {
        let server =
            "[mcp_servers.mem]\nurl = \"http://127.0.0.1:1/mcp\"\ntools = [\"memory_list\"]\n";
        let ok = format!(
            "{MODEL}{server}\n[agents.a]\nkind = \"llm\"\nmodel = \"m\"\ntools = [\"mem.memory_list\"]\n"
        );
        assert!(Agents::parse(&ok).is_ok());
        let e = error(&format!(
            "{MODEL}{server}\n[agents.a]\nkind = \"llm\"\nmodel = \"m\"\ntools = [\"mem.memory_delete\"]\n"
        ));
        assert!(e.contains("mem.memory_delete"), "{e}");
        let e = error(&format!("{MODEL}[mcp_servers.x]\ntools = [\"t\"]\n"));
        assert!(e.contains("url") && e.contains("command"), "{e}");
    }

    #[test]
    fn approval_tools_must_be_the_agents_own_and_not_in_a_step() {
        let careful = "[agents.c]\nkind = \"llm\"\nmodel = \"m\"\ntools = [\"exit_loop\"]\napproval = [\"exit_loop\"]\n";
        assert!(Agents::parse(&format!("{MODEL}{careful}")).is_ok());
        let e = error(&format!(
            "{MODEL}{careful}[agents.p]\nkind = \"sequential\"\nsteps = [\"c\"]\n"
        ));
        assert!(
            e.contains("cannot be a step") && e.contains("agents.c"),
            "{e}"
        );
        let e = error(&format!(
            "{MODEL}[agents.c]\nkind = \"llm\"\nmodel = \"m\"\napproval = [\"memory_store\"]\n"
        ));
        assert!(e.contains("not one of its tools"), "{e}");
    }

    #[test]
    fn an_agent_that_contains_itself_is_refused() {
        let e = error(
            "[agents.a]\nkind = \"sequential\"\nsteps = [\"b\"]\n\
             [agents.b]\nkind = \"loop\"\nsteps = [\"a\"]\n",
        );
        assert!(e.contains("a -> b -> a"), "{e}");
    }

    #[test]
    fn the_shipped_agents_file_is_valid() {
        let text = include_str!("../../../config/agents.toml");
        let agents = Agents::parse(text).unwrap();
        assert!(agents.agent("assistant").is_some());
        assert!(agents.agent("planner").is_some());
    }
}
