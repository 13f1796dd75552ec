//! `memory-server mcp-stdio`: MCP over stdin/stdout for local clients.
//!
//! Only MCP messages go to stdout (logs go to stderr); the process exits
//! when stdin closes.

use rmcp::ServiceExt;

use super::MemoryMcp;

/// Serves `mcp` on stdin/stdout until the client closes stdin.
pub async fn serve(mcp: MemoryMcp) -> std::io::Result<()> {
    let running = mcp
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| std::io::Error::other(format!("MCP handshake failed: {e}")))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| std::io::Error::other(format!("MCP service failed: {e}")))?;
    tracing::info!(?reason, "MCP stdio session ended");
    Ok(())
}
