//! The schema catalog: node types, their properties and the encoding of their records,
//! stored in the manifest with a schema version.

use crate::sql::Cached;
use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{EngineError, Result};

/// How a node type's records are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The legacy binary encoding ([`crate::legacy`]).
    Legacy,
    /// JSON objects.
    #[default]
    Json,
}

/// One property of a node type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Property {
    /// The value records get when the property is added (null when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Dropped from the catalog's view; the data is kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft_dropped: bool,
}

/// A node type: its encoding and properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeType {
    /// How its records are stored.
    #[serde(default)]
    pub encoding: Encoding,
    /// Its properties by name.
    pub properties: BTreeMap<String, Property>,
}

/// The whole catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Schema {
    /// The schema version (0: no schema defined yet).
    pub version: u64,
    /// Node types by name.
    pub node_types: BTreeMap<String, NodeType>,
}

/// The table (file) holding the records of `node_type`.
pub fn table_name(node_type: &str) -> String {
    format!("nodes-{node_type}")
}

/// Reads the catalog inside a transaction or statement on the manifest.
pub fn read(connection: &Connection) -> rusqlite::Result<Schema> {
    let body: Option<String> = connection
        .row("SELECT body FROM catalog WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    Ok(body
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default())
}

/// Writes the catalog inside an open write transaction on the manifest.
pub fn write(connection: &Connection, schema: &Schema) -> Result<()> {
    let body = serde_json::to_string(schema).map_err(|e| EngineError::Corrupt(e.to_string()))?;
    connection.run(
        "INSERT OR REPLACE INTO catalog(id, body) VALUES (1, ?1)",
        [body],
    )?;
    Ok(())
}
