//! Request bodies checked against their published JSON Schema for one thing
//! serde lets through: an array where an object belongs.
//!
//! serde reads a struct from a JSON array of its fields in order, so
//! `{"filter": ["a"]}` or `{"memories": [["team", "text"]]}` would be taken
//! as objects. Every object of this API is sent by name, so the schema the
//! clients see (OpenAPI for REST, each tool's input schema for MCP) decides:
//! where it says object, an array is a 400 naming the field. Anything else
//! that does not match is left to serde, which says what it expected.

use serde_json::Value;

/// How deep `$ref`s and nesting are followed (the schemas are far shallower).
const MAX_DEPTH: usize = 64;

/// Fails with `"<path>: expected an object, found an array"` where `value`
/// has an array and `schema` (resolved against `root`) an object.
pub fn check(root: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    walk(root, schema, value, "", 0)
}

/// `schema` with `$ref`s followed (JSON pointers into `root`).
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        match reference.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(target) => schema = target,
            None => return &Value::Null,
        }
    }
    &Value::Null
}

/// The JSON types `schema` names (empty: it does not say).
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => Vec::new(),
    }
}

/// Whether `schema` allows `value`'s JSON type.
fn admits(schema: &Value, value: &Value) -> bool {
    let ts = types(schema);
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    ts.is_empty() || ts.contains(&kind) || (kind == "integer" && ts.contains(&"number"))
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn walk(root: &Value, schema: &Value, value: &Value, at: &str, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let schema = resolve(root, schema);
    let refused = || {
        let at = if at.is_empty() { "the body" } else { at };
        Err(format!("{at}: expected an object, found an array"))
    };
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            let variants: Vec<&Value> = variants.iter().map(|v| resolve(root, v)).collect();
            let fitting: Vec<&&Value> = variants.iter().filter(|v| admits(v, value)).collect();
            return match fitting.as_slice() {
                [] if value.is_array() && variants.iter().any(|v| types(v).contains(&"object")) => {
                    refused()
                }
                [only] => walk(root, only, value, at, depth + 1),
                // No variant, or several: serde decides and says why.
                _ => Ok(()),
            };
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            walk(root, s, value, at, depth + 1)?;
        }
    }
    let ts = types(schema);
    if value.is_array() && ts.contains(&"object") && !ts.contains(&"array") {
        return refused();
    }
    if let (Some(properties), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (key, v) in object {
            if let Some(s) = properties.get(key) {
                walk(root, s, v, &join(at, key), depth + 1)?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        // A vector's 384 numbers cannot hold an object: walking them cost
        // a tenth of a vector search's CPU (docs/benchmarks.md).
        if may_refuse(root, items, depth + 1) {
            for (i, v) in array.iter().enumerate() {
                walk(root, items, v, &format!("{at}[{i}]"), depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Whether [`walk`] could refuse some value under `schema`: only where an
/// object may appear (a variant list is not looked into).
fn may_refuse(root: &Value, schema: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let schema = resolve(root, schema);
    if ["oneOf", "anyOf", "allOf", "properties"]
        .iter()
        .any(|k| schema.get(k).is_some())
        || types(schema).contains(&"object")
    {
        return true;
    }
    schema
        .get("items")
        .is_some_and(|items| may_refuse(root, items, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root() -> Value {
        json!({
            "components": {"schemas": {
                "Filter": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
                "Item": {"type": "object", "properties": {"text": {"type": "string"}}},
                "Body": {"type": "object", "properties": {
                    "filter": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Filter"}]},
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                    "metadata": {"type": "object"},
                    "vector": {"type": ["array", "null"], "items": {"type": "number"}}
                }}
            }}
        })
    }

    fn body(value: Value) -> Result<(), String> {
        let root = root();
        check(&root, &json!({"$ref": "#/components/schemas/Body"}), &value)
    }

    #[test]
    fn arrays_where_objects_belong_are_named() {
        assert_eq!(
            body(json!(["a"])),
            Err("the body: expected an object, found an array".into())
        );
        assert_eq!(
            body(json!({"filter": ["x"]})),
            Err("filter: expected an object, found an array".into())
        );
        assert_eq!(
            body(json!({"items": [{"text": "ok"}, ["team", "text"]]})),
            Err("items[1]: expected an object, found an array".into())
        );
        assert_eq!(
            body(json!({"metadata": [1]})),
            Err("metadata: expected an object, found an array".into())
        );
    }

    #[test]
    fn arrays_are_looked_into_only_where_an_object_may_be() {
        let root = root();
        let schema = |s: Value| may_refuse(&root, &s, 0);
        assert!(!schema(json!({"type": "number"})));
        assert!(!schema(
            json!({"type": "array", "items": {"type": "string"}})
        ));
        assert!(schema(json!({"$ref": "#/components/schemas/Item"})));
        assert!(schema(
            json!({"type": "array", "items": {"$ref": "#/components/schemas/Item"}})
        ));
        assert!(schema(
            json!({"oneOf": [{"type": "null"}, {"type": "number"}]})
        ));
        // An array of arrays of objects is still checked at the inner level.
        let nested = json!({"type": "array", "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}});
        assert!(schema(nested.clone()));
        assert_eq!(
            check(&root, &nested, &json!([[{"text": "ok"}], [["x"]]])),
            Err("[1][0]: expected an object, found an array".into())
        );
    }

    #[test]
    fn arrays_where_arrays_belong_and_other_mismatches_pass_to_serde() {
        assert_eq!(
            body(json!({"filter": null, "items": [], "vector": [0.5, 1]})),
            Ok(())
        );
        assert_eq!(
            body(json!({"filter": {"tags": ["a"]}, "vector": null})),
            Ok(())
        );
        // Wrong scalar types and unknown fields are serde's to report.
        assert_eq!(body(json!({"filter": "x", "unknown": [1]})), Ok(()));
        // A dangling reference checks nothing rather than failing.
        let root = json!({});
        assert_eq!(
            check(&root, &json!({"$ref": "#/nowhere"}), &json!([1])),
            Ok(())
        );
    }
}
