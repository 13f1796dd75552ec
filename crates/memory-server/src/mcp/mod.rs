//! The memory API as a Model Context Protocol server (rmcp).
//!
//! - [`tools`]: the tools, the `memory://{namespace}/{id}` resource and the
//!   recall prompt, each a thin call into the shared [`crate::service`];
//! - [`http`]: streamable HTTP at `/mcp` (API-key auth, Host/Origin allowlists,
//!   body limit), both protocol eras;
//! - [`protocol_sessions`]: where older-era MCP protocol sessions live, so
//!   that any instance behind a load balancer can serve them (not to be
//!   confused with working-memory sessions, `service::sessions`);
//! - [`stdio`]: `memory-server mcp-stdio`.

pub mod http;
pub mod protocol_sessions;
pub mod stdio;
pub mod tools;

pub use self::tools::MemoryMcp;
