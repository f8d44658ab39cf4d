//! The MCP gateway (SPEC §13, second bullet).
