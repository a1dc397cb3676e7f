//! [`Args`]: tool arguments whose shape errors become our own `INVALID_ARGUMENT` tool errors,
//! with the same code and hint format as every other refusal, instead of the SDK's generic text.

use std::borrow::Cow;

use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::ToolError;
use crate::wire::ErrorBody;

/// Deserialization never fails here; the outcome is kept for the tool to report.
pub struct Args<T>(Result<T, String>);

impl<T: DeserializeOwned> Args<T> {
    /// The arguments of a call as rmcp's `Parameters` reads them: the object, as a `Value`.
    pub fn from_object(arguments: JsonObject) -> Self {
        Args(
            serde_json::from_value(serde_json::Value::Object(arguments))
                .map_err(|error| error.to_string()),
        )
    }
}

impl<T> Args<T> {
    pub fn into_inner(self) -> Result<T, ToolError> {
        self.0.map_err(|reason| {
            ToolError(ErrorBody {
                code: domain::ErrorCode::InvalidArgument.as_str(),
                message: format!("invalid arguments: {reason}"),
                hint: "Check the tool's input schema: field names, types and required fields."
                    .into(),
            })
        })
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Args(
            serde_json::from_value(value).map_err(|error| error.to_string()),
        ))
    }
}

impl<T: JsonSchema> JsonSchema for Args<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
