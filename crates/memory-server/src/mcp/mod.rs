//! The memory API as a Model Context Protocol server (rmcp).
//!
//! - [`tools`]: the tools, the `memory://{namespace}/{id}` resource and the
//!   recall prompt, each a thin call into the shared [`crate::service`];
//! - [`http`]: streamable HTTP at `/mcp` (API-key auth, Host/Origin allowlists,
//!   body limit), both protocol eras;
//! - [`sessions`]: where older-era MCP sessions live so that any instance
//!   behind a load balancer can serve them;
//! - [`stdio`]: `memory-server mcp-stdio`.

pub mod http;
pub mod sessions;
pub mod stdio;
pub mod tools;

pub use self::tools::MemoryMcp;
