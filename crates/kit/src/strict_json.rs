//! JSON read straight into a type, with every struct taken only from a JSON
//! object.
//!
//! serde reads a struct from a JSON array of its fields in order, so
//! `{"filter": ["a"]}` would be taken as a filter. The memory server refuses
//! that by checking a body, as a [`serde_json::Value`], against its
//! published schema, which costs a tree of the whole body (for a search,
//! 384 numbers as `Value`s, then converted again). [`from_slice`] reads the
//! type directly instead, through a deserializer that asks serde_json for a
//! map wherever the type asks for a struct, at any depth; a struct variant
//! refuses an array the same way.
//!
//! What it does not see: a type that reads through serde's buffered
//! `Content` (untagged or internally tagged enums, `flatten`) or a
//! `serde_json::Value` field the schema calls an object. The memory server
//! keeps its schema check for what this refuses and for such types, and a
//! test holds every body type to the same answer from both; the
//! orchestrator's bodies have none of them (its one `Value` argument is
//! checked by its handler), so there this is the whole check.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};

/// `T` from `bytes`, refusing a JSON array wherever `T` has a struct (and
/// trailing characters after the value, as `serde_json::from_slice` does).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(Objects(&mut de))?;
    de.end()?;
    Ok(value)
}

/// As [`from_slice`], and a failure names the path of the value that failed
/// (`messages[0]`, `filter.kind`; empty for the body itself), as
/// `serde_path_to_error` reports it: for the message of a refused body.
pub fn from_slice_traced<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, (String, serde_json::Error)> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let value = T::deserialize(serde_path_to_error::Deserializer::new(
        Objects(&mut de),
        &mut track,
    ))
    .map_err(|e| (track.path().to_string(), e))?;
    de.end().map_err(|e| (String::new(), e))?;
    Ok(value)
}

/// A deserializer whose structs come only from maps; everything it hands
/// on (elements, keys, values, variants) is wrapped the same way.
struct Objects<D>(D);

/// A visitor whose nested deserializers are [`Objects`].
struct Nested<V>(V);

/// A struct's visitor: maps only.
struct Struct<V>(V);

macro_rules! forward {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(Nested(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Objects<D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Nested(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Nested(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Nested(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Nested(visitor))
    }

    // The point of the wrapper: serde_json's `deserialize_struct` takes an
    // array too, its `deserialize_map` only an object.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Struct(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Nested(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// The visitor methods that carry no nested deserializer, forwarded as they are.
macro_rules! visit_plain {
    ($($method:ident($t:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

/// The visitor methods both wrappers share; `visit_seq` is each one's own.
macro_rules! visitor_body {
    () => {
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            self.0.expecting(f)
        }

        visit_plain!(
            visit_bool(bool),
            visit_i8(i8),
            visit_i16(i16),
            visit_i32(i32),
            visit_i64(i64),
            visit_i128(i128),
            visit_u8(u8),
            visit_u16(u16),
            visit_u32(u32),
            visit_u64(u64),
            visit_u128(u128),
            visit_f32(f32),
            visit_f64(f64),
            visit_char(char),
            visit_str(&str),
            visit_borrowed_str(&'de str),
            visit_string(String),
            visit_bytes(&[u8]),
            visit_borrowed_bytes(&'de [u8]),
            visit_byte_buf(Vec<u8>),
        );

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_none()
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_unit()
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.visit_some(Objects(d))
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.visit_newtype_struct(Objects(d))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(Nested(map))
        }

        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            self.0.visit_enum(Nested(data))
        }
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Nested<V> {
    type Value = V::Value;

    visitor_body!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Nested(seq))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Struct<V> {
    type Value = V::Value;

    visitor_body!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
}

/// A seed whose deserializer is wrapped in [`Objects`].
impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nested<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Objects(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        self.0.next_element_seed(Nested(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Nested(seed))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        self.0.next_value_seed(Nested(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Nested<A> {
    type Error = A::Error;
    type Variant = Nested<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Self::Error> {
        self.0
            .variant_seed(Nested(seed))
            .map(|(value, variant)| (value, Nested(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        self.0.newtype_variant_seed(Nested(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, Nested(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, Struct(visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        a: u32,
        #[serde(default)]
        b: Vec<f32>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Unit,
        Wrapped(u32),
        Pair(u32, u32),
        Fields { x: u32 },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
        #[serde(default)]
        shape: Option<Shape>,
        #[serde(default)]
        extra: serde_json::Map<String, serde_json::Value>,
    }

    #[test]
    fn objects_read_as_plain_serde_json_reads_them() {
        let body = r#"{"name": "n", "inner": {"a": 1, "b": [0.5, -2]},
            "list": [{"a": 2}, {"a": 3, "b": []}], "shape": {"fields": {"x": 4}},
            "extra": {"k": [1, {"z": null}]}}"#;
        let strict: Outer = from_slice(body.as_bytes()).unwrap();
        let plain: Outer = serde_json::from_slice(body.as_bytes()).unwrap();
        assert_eq!(strict, plain);
        assert_eq!(
            strict.inner,
            Some(Inner {
                a: 1,
                b: vec![0.5, -2.0]
            })
        );
        for shape in [r#""unit""#, r#"{"wrapped": 7}"#, r#"{"pair": [1, 2]}"#] {
            let body = format!(r#"{{"name": "n", "shape": {shape}}}"#);
            let strict: Outer = from_slice(body.as_bytes()).unwrap();
            let plain: Outer = serde_json::from_slice(body.as_bytes()).unwrap();
            assert_eq!(strict, plain, "{shape}");
        }
    }

    #[test]
    fn an_array_where_a_struct_belongs_is_refused_at_any_depth() {
        for body in [
            r#"["n", null]"#,
            r#"{"name": "n", "inner": [1]}"#,
            r#"{"name": "n", "list": [{"a": 1}, [2]]}"#,
            r#"{"name": "n", "shape": {"fields": [4]}}"#,
        ] {
            // Plain serde_json takes each of them: the wrapper is what refuses.
            assert!(
                serde_json::from_slice::<Outer>(body.as_bytes()).is_ok(),
                "{body}"
            );
            let err = from_slice::<Outer>(body.as_bytes()).unwrap_err();
            assert!(
                err.to_string().contains("invalid type: sequence"),
                "{body}: {err}"
            );
        }
    }

    #[test]
    fn a_traced_read_names_where_it_failed() {
        let (path, err) =
            from_slice_traced::<Outer>(br#"{"name": "n", "list": [{"a": 1}, [2]]}"#).unwrap_err();
        assert_eq!(path, "list[1]");
        assert!(err.to_string().contains("invalid type: sequence"), "{err}");
        let (path, _) =
            from_slice_traced::<Outer>(br#"{"name": "n", "inner": {"a": "x"}}"#).unwrap_err();
        assert_eq!(path, "inner.a");
        let ok: Outer = from_slice_traced(br#"{"name": "n"}"#).unwrap();
        assert_eq!(ok.name, "n");
    }

    #[test]
    fn other_errors_stay_serde_json_s() {
        let err = from_slice::<Outer>(br#"{"name": 1}"#).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
        let err = from_slice::<Outer>(br#"{"name": "n", "nope": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `nope`"), "{err}");
        let err = from_slice::<Outer>(br#"{"name": "n"} x"#).unwrap_err();
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }
}
