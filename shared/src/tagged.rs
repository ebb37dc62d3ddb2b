//! The wire's tagged form, `{"type": "<variant>", <the variant's fields>}`, read and written
//! without serde's buffering.
//!
//! Serde derives this form (`#[serde(tag = "type")]`), but reads it by buffering each whole object
//! before decoding the variant, which builds every decoder twice over; in the browser app that was
//! the largest single cost. So [`crate::ServerMessage`] and [`crate::Event`] derive serde's plain,
//! externally tagged code (`#[serde(remote = "Self")]`, which makes it inherent functions rather
//! than trait impls) and implement the traits by driving it through two adapters:
//!
//! - reading, [`deserialize`] takes the `"type"` key first (this crate always writes it first),
//!   and hands the rest of the object to the variant's own decoder as it streams by;
//! - writing, [`serialize`] opens one object, writes `"type"`, then the variant's fields.
//!
//! In the browser, an object whose first key is not `"type"` is refused with an error saying so:
//! it only reads what the server wrote. Natively (the server, the tests), such an object is put in
//! order first, which costs a copy but keeps any JSON readable. Commands, which come from clients
//! this crate did not write, keep serde's order-tolerant derive. As with the derive, fields a reader
//! does not know are ignored (the protocol may add fields within a version).

use serde::de::{self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, VariantAccess, Visitor};
use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, SerializeStructVariant, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A type written in the tagged form: `from_variant` and `to_variant` are its externally tagged
/// derive (`#[serde(remote = "Self")]`).
pub trait Tagged: Sized {
    fn from_variant<'de, D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
    fn to_variant<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
}

/// Reads a tagged object whose first key is `"type"`.
pub fn deserialize<'de, D: de::Deserializer<'de>, T: Tagged>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_map(TaggedVisitor(PhantomData))
}

/// Writes `"type"` and then the variant's fields, in one object.
pub fn serialize<T: Tagged, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    value.to_variant(TagFirst(serializer))
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object whose first key is \"type\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key::<String>()? {
            Some(key) if key == "type" => {}
            Some(key) => return in_order(key, map),
            None => return Err(de::Error::missing_field("type")),
        }
        let tag: String = map.next_value()?;
        T::from_variant(TypeFirst { tag, rest: map })
    }
}

/// Reads an object whose first key, `first`, is not `"type"`: natively by reading it whole and
/// putting `"type"` first; in the browser, not at all.
#[cfg(not(target_arch = "wasm32"))]
fn in_order<'de, A: MapAccess<'de>, T: Tagged>(first: String, mut map: A) -> Result<T, A::Error> {
    let mut entries: Vec<(String, serde_json::Value)> = vec![(first, map.next_value()?)];
    while let Some(entry) = map.next_entry()? {
        entries.push(entry);
    }
    let at = entries.iter().position(|(k, _)| k == "type").ok_or_else(|| de::Error::missing_field("type"))?;
    let tag = entries.remove(at);
    entries.insert(0, tag);
    let ordered = de::value::MapDeserializer::<_, serde_json::Error>::new(entries.into_iter());
    deserialize(ordered).map_err(de::Error::custom)
}

#[cfg(target_arch = "wasm32")]
fn in_order<'de, A: MapAccess<'de>, T: Tagged>(_first: String, _map: A) -> Result<T, A::Error> {
    Err(de::Error::custom("\"type\" must be the object's first key"))
}

/// The variant named by the tag, and the rest of the object for its fields.
struct TypeFirst<A> {
    tag: String,
    rest: A,
}

impl<'de, A: MapAccess<'de>> de::Deserializer<'de> for TypeFirst<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("a tagged object holds an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for TypeFirst<A> {
    type Error = A::Error;
    type Variant = Fields<A>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Fields<A>), A::Error> {
        let tag: de::value::StringDeserializer<A::Error> = self.tag.into_deserializer();
        Ok((seed.deserialize(tag)?, Fields(self.rest)))
    }
}

/// The rest of a tagged object: the variant's fields.
struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        // Fields added in a later version of the protocol are ignored.
        while self.0.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        // The inner value's fields sit beside the tag.
        seed.deserialize(de::value::MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("a tagged object has no tuple variants"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

/// The `Serializer` methods an adapter has no use for: each answers `$error()`.
macro_rules! refuse {
    ($error:ident; $($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Self::Error> {
            Err($error())
        })*
    };
}

/// Both adapters refuse every plain value: they only take an enum's variant, or a struct.
macro_rules! refuse_values {
    ($error:ident) => {
        refuse! { $error;
            serialize_bool(bool) -> Self::Ok;
            serialize_i8(i8) -> Self::Ok;
            serialize_i16(i16) -> Self::Ok;
            serialize_i32(i32) -> Self::Ok;
            serialize_i64(i64) -> Self::Ok;
            serialize_u8(u8) -> Self::Ok;
            serialize_u16(u16) -> Self::Ok;
            serialize_u32(u32) -> Self::Ok;
            serialize_u64(u64) -> Self::Ok;
            serialize_f32(f32) -> Self::Ok;
            serialize_f64(f64) -> Self::Ok;
            serialize_char(char) -> Self::Ok;
            serialize_str(&str) -> Self::Ok;
            serialize_bytes(&[u8]) -> Self::Ok;
            serialize_none() -> Self::Ok;
            serialize_unit() -> Self::Ok;
            serialize_unit_struct(&'static str) -> Self::Ok;
        }
    };
}

/// Writes an enum's variant as a tagged object.
struct TagFirst<S>(S);

fn not_an_enum<E: ser::Error>() -> E {
    E::custom("only enums are written as tagged objects")
}

impl<S: Serializer> TagFirst<S> {
    fn open(self, variant: &'static str, len: Option<usize>) -> Result<S::SerializeMap, S::Error> {
        let mut map = self.0.serialize_map(len)?;
        map.serialize_entry("type", variant)?;
        Ok(map)
    }
}

impl<S: Serializer> Serializer for TagFirst<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = IntoMap<S::SerializeMap>;

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        self.open(variant, Some(1))?.end()
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<IntoMap<S::SerializeMap>, S::Error> {
        Ok(IntoMap(self.open(variant, Some(len + 1))?))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let mut map = self.open(variant, None)?;
        // The inner value is a struct; its fields go beside the tag.
        value.serialize(Flatten(&mut map))?;
        map.end()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_an_enum())
    }

    refuse_values!(not_an_enum);
    refuse! { not_an_enum;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }
}

/// A struct variant's fields, written into the tagged object.
struct IntoMap<M>(M);

impl<M: SerializeMap> SerializeStructVariant for IntoMap<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), M::Error> {
        self.0.serialize_entry(key, value)
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.0.end()
    }
}

/// Writes a struct's fields into an object already open (a newtype variant's inner value).
struct Flatten<'a, M>(&'a mut M);

fn not_a_struct<E: ser::Error>() -> E {
    E::custom("a newtype variant of a tagged object must hold a struct")
}

impl<'a, M: SerializeMap> Serializer for Flatten<'a, M> {
    type Ok = ();
    type Error = M::Error;
    type SerializeSeq = Impossible<(), M::Error>;
    type SerializeTuple = Impossible<(), M::Error>;
    type SerializeTupleStruct = Impossible<(), M::Error>;
    type SerializeTupleVariant = Impossible<(), M::Error>;
    type SerializeMap = Impossible<(), M::Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), M::Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, M::Error> {
        Ok(self)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), M::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<(), M::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        Err(not_a_struct())
    }

    refuse_values!(not_a_struct);
    refuse! { not_a_struct;
        serialize_unit_variant(&'static str, u32, &'static str) -> Self::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

impl<'a, M: SerializeMap> SerializeStruct for Flatten<'a, M> {
    type Ok = ();
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), M::Error> {
        self.0.serialize_entry(key, value)
    }

    fn end(self) -> Result<(), M::Error> {
        Ok(())
    }
}

/// Implements `Serialize` and `Deserialize` for a type through [`Tagged`].
macro_rules! tagged_serde {
    ($type:ty) => {
        impl $crate::tagged::Tagged for $type {
            fn from_variant<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$type>::deserialize(deserializer)
            }
            fn to_variant<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$type>::serialize(self, serializer)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::tagged::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::tagged::deserialize(deserializer)
            }
        }
    };
}
pub(crate) use tagged_serde;
