//! The REST routes as data: one [`Operation`] per method and path, from which both the router
//! and the OpenAPI 3.1 document are built, so the document cannot describe a route that is not
//! served or miss one that is.
//!
//! Schemas come from the same `schemars` derives as the MCP tools' schemas.

use axum::Router;
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::routing::{MethodFilter, MethodRouter};
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use service::Service;
use std::sync::Arc;

use crate::metrics::Metrics;

use crate::wire::ErrorResponse;

type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn root_schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.root_schema_for::<T>()
}

/// One route: how it is served and how it is described.
pub(super) struct Operation {
    method: Method,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    query: Option<SchemaOf>,
    body: Option<(SchemaOf, Required)>,
    success: (StatusCode, SchemaOf),
    handler: MethodRouter<Service>,
}

/// Whether a request body must be sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Required {
    Yes,
    No,
}

impl Operation {
    /// A route at `path` (axum's syntax, which is also OpenAPI's: `{name}` for a segment) that
    /// answers 200 with `Out`.
    pub(super) fn new<Out: JsonSchema, T: 'static>(
        method: Method,
        path: &'static str,
        id: &'static str,
        summary: &'static str,
        handler: impl Handler<T, Service>,
    ) -> Self {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} is not a method axum routes"));
        Self {
            method,
            path,
            id,
            summary,
            query: None,
            body: None,
            success: (StatusCode::OK, schema_of::<Out>),
            handler: axum::routing::on(filter, handler),
        }
    }

    pub(super) fn query<Q: JsonSchema>(mut self) -> Self {
        self.query = Some(root_schema_of::<Q>);
        self
    }

    pub(super) fn body<B: JsonSchema>(mut self, required: Required) -> Self {
        self.body = Some((schema_of::<B>, required));
        self
    }

    pub(super) fn created(mut self) -> Self {
        self.success.0 = StatusCode::CREATED;
        self
    }
}

/// The router serving `operations`, with `state`.
pub(super) fn router(operations: Vec<Operation>, state: Service, metrics: &Arc<Metrics>) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<Service>)> = Vec::new();
    for mut operation in operations {
        operation.handler = operation
            .handler
            .route_layer(axum::middleware::from_fn_with_state(
                (Arc::clone(metrics), operation.id),
                crate::metrics::measure_rest,
            ));
        match by_path.iter_mut().find(|(path, _)| *path == operation.path) {
            Some((_, methods)) => {
                *methods = std::mem::take(methods).merge(operation.handler);
            }
            None => by_path.push((operation.path, operation.handler)),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .with_state(state)
}

/// The OpenAPI 3.1 document describing `operations`, mounted under `prefix`.
pub(super) fn document(operations: &[Operation], prefix: &str) -> Value {
    // Requests are described as they are parsed, responses as they are written.
    let mut requests = generator(Contract::Deserialize);
    let mut responses = generator(Contract::Serialize);
    let error = responses.subschema_for::<ErrorResponse>();
    let mut paths = Map::new();
    for operation in operations {
        let mut parameters: Vec<Value> = path_parameters(operation.path);
        if let Some(query) = operation.query {
            parameters.extend(query_parameters(&query(&mut requests)));
        }
        let mut described = json!({
            "operationId": operation.id,
            "summary": operation.summary,
            "parameters": parameters,
            "responses": {
                operation.success.0.as_str(): {
                    "description": operation.success.0.canonical_reason().unwrap_or("success"),
                    "content": {"application/json": {"schema": (operation.success.1)(&mut responses)}},
                },
                "default": {
                    "description": "A refusal: a stable code, a message and a hint.",
                    "content": {"application/json": {"schema": &error}},
                },
            },
        });
        if let Some((body, required)) = operation.body {
            described["requestBody"] = json!({
                "required": required == Required::Yes,
                "content": {"application/json": {"schema": body(&mut requests)}},
            });
        }
        let entry = paths
            .entry(format!("{prefix}{}", operation.path))
            .or_insert_with(|| json!({}));
        entry[operation.method.as_str().to_ascii_lowercase()] = described;
    }
    let mut schemas = requests.take_definitions(true);
    schemas.extend(responses.take_definitions(true));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "MCP Multiplayer REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The same capabilities as the MCP tools at /mcp, as JSON over HTTP. \
                            Every refusal is {\"error\": {code, message, hint}}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}

fn generator(contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
            settings.contract = contract;
        })
        .into_generator()
}

/// `{name}` segments of a path, each a required string.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// One query parameter per property of a flat query struct's schema.
fn query_parameters(schema: &Schema) -> Vec<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            // A query string cannot carry null: an absent parameter is how it says "none".
            if let Some(types) = property.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|kind| kind != "null");
                if let [only] = types.as_slice() {
                    property["type"] = only.clone();
                }
            }
            let description = property
                .as_object_mut()
                .and_then(|object| object.remove("description"));
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": property,
            });
            if let Some(description) = description {
                parameter["description"] = description;
            }
            parameter
        })
        .collect()
}

/// Serves a document serialized once.
pub(super) fn serve_document(document: &Value) -> MethodRouter {
    let body = axum::body::Bytes::from(document.to_string());
    axum::routing::get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    })
}
