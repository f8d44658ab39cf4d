//! Gatehouse's own MCP server (SPEC §13, first bullet).
