//! Tool schemas in the portable subset of JSON Schema that every MCP client reads.
//!
//! schemars spells an optional field `"type": ["string", "null"]`, or `anyOf` with a
//! `{"type": "null"}` branch. Several clients (and the MCP Inspector's `--strict` check) do not
//! accept type arrays. Our optional inputs are simply left out, and our outputs leave out what
//! they do not have (every `Option` in `wire` is `skip_serializing_if`), so `null` never needs
//! to be spelled: it is removed from every schema once, when the tool router is built.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use serde_json::{Map, Value};

/// Rewrites every tool's input and output schema without `null`.
pub(super) fn portable<S>(mut router: ToolRouter<S>) -> ToolRouter<S> {
    for route in router.map.values_mut() {
        let tool = &mut route.attr;
        tool.input_schema = Arc::new(without_null(tool.input_schema.as_ref().clone()));
        if let Some(output) = &tool.output_schema {
            tool.output_schema = Some(Arc::new(without_null(output.as_ref().clone())));
        }
    }
    router
}

fn without_null(mut schema: Map<String, Value>) -> Map<String, Value> {
    strip_null(&mut schema);
    schema
}

fn strip_null(schema: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|kind| kind != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".into(), only);
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = schema.get_mut(key) else {
            continue;
        };
        branches.retain(|branch| branch.get("type").is_none_or(|kind| kind != "null"));
        if let [Value::Object(only)] = branches.as_slice() {
            // One branch left: it is the schema (a `$ref` to the type, usually).
            let only = only.clone();
            schema.remove(key);
            schema.extend(only);
        }
    }
    if schema.get("default").is_some_and(Value::is_null) {
        schema.remove("default");
    }
    for value in schema.values_mut() {
        match value {
            Value::Object(child) => strip_null(child),
            Value::Array(items) => items.iter_mut().for_each(|item| {
                if let Value::Object(child) = item {
                    strip_null(child);
                }
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rewritten(schema: Value) -> Value {
        let Value::Object(map) = schema else {
            panic!("an object")
        };
        Value::Object(without_null(map))
    }

    #[test]
    fn optional_fields_lose_their_null() {
        assert_eq!(
            rewritten(json!({"properties": {
                "slot": {"type": ["string", "null"], "default": null},
                "limit": {"type": ["integer", "null"], "format": "uint", "minimum": 0},
                "channel": {"anyOf": [{"$ref": "#/$defs/ChannelView"}, {"type": "null"}]},
                "either": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            }})),
            json!({"properties": {
                "slot": {"type": "string"},
                "limit": {"type": "integer", "format": "uint", "minimum": 0},
                "channel": {"$ref": "#/$defs/ChannelView"},
                "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            }})
        );
    }

    #[test]
    fn no_tool_schema_spells_null() {
        for tool in super::super::TOOLS.list_all() {
            let input = Value::Object(tool.input_schema.as_ref().clone()).to_string();
            assert!(!input.contains("\"null\""), "{}: {input}", tool.name);
            if let Some(output) = &tool.output_schema {
                let output = Value::Object(output.as_ref().clone()).to_string();
                assert!(!output.contains("\"null\""), "{}: {output}", tool.name);
            }
        }
    }
}
