//! Socket assigns, Phoenix's `socket.assigns`: a JSON map, read and written as typed
//! values through serde.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;

/// Socket assigns: what `connect` stored, plus route assigns, plus what callbacks add.
///
/// A JSON object, as Phoenix's assigns map; [`TypedAssigns`] reads and writes its
/// entries as any serde type.
pub type Assigns = Map<String, Value>;

/// Why an assign could not be read or written as the type asked for.
#[derive(Debug)]
#[non_exhaustive]
pub enum AssignError {
    /// No assign has this key.
    Missing {
        /// The key asked for.
        key: String,
    },
    /// The assign (or, for `key: None`, the whole map) is not a `T`, or a value could
    /// not be written as JSON.
    Invalid {
        /// The key, or `None` for the whole map.
        key: Option<String>,
        /// The Rust type asked for or given.
        type_name: &'static str,
        /// What serde said.
        source: serde_json::Error,
    },
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssignError::Missing { key } => write!(f, "no assign {key:?}"),
            AssignError::Invalid { key: Some(key), type_name, source } => {
                write!(f, "assign {key:?} as {type_name}: {source}")
            }
            AssignError::Invalid { key: None, type_name, source } => write!(f, "the assigns as {type_name}: {source}"),
        }
    }
}

impl std::error::Error for AssignError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AssignError::Missing { .. } => None,
            AssignError::Invalid { source, .. } => Some(source),
        }
    }
}

/// Typed reads and writes of [`Assigns`], through serde: the map keeps Phoenix's
/// shape (what `connect` returns, what a test passes to
/// [`testing::socket`](crate::testing::socket)), and each callback reads the types it
/// needs instead of picking JSON apart. [`Socket::assign_as`](crate::Socket::assign_as)
/// and its siblings do the same on a channel's socket.
///
/// ```
/// use phx_channels::{Assigns, TypedAssigns};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct User {
///     id: u64,
///     name: String,
/// }
///
/// let mut assigns = Assigns::new();
/// assigns.insert_as("user", &User { id: 7, name: "ada".into() })?;
/// assigns.insert_as("user_id", &7u64)?;
/// assert_eq!(assigns.get_as::<u64>("user_id")?, 7);
/// assert_eq!(assigns.get_as::<User>("user")?.name, "ada");
/// assert!(assigns.get_as::<String>("user_id").is_err()); // a number, not a string
/// assert_eq!(assigns.get_as::<u64>("team").unwrap_err().to_string(), "no assign \"team\"");
///
/// // The whole map as one struct (keys it does not name are ignored).
/// #[derive(Deserialize)]
/// struct Session {
///     user_id: u64,
/// }
/// assert_eq!(assigns.decode::<Session>()?.user_id, 7);
/// # Ok::<(), phx_channels::AssignError>(())
/// ```
pub trait TypedAssigns {
    /// The assign `key` as a `T`.
    fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, AssignError>;

    /// Sets the assign `key` to `value`, written as JSON.
    fn insert_as<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) -> Result<(), AssignError>;

    /// The whole map as a `T`, typically a struct with a field per assign.
    fn decode<T: DeserializeOwned>(&self) -> Result<T, AssignError>;
}

impl TypedAssigns for Assigns {
    fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, AssignError> {
        let value = self.get(key).ok_or_else(|| AssignError::Missing { key: key.to_owned() })?;
        T::deserialize(value).map_err(|source| invalid::<T>(Some(key), source))
    }

    fn insert_as<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) -> Result<(), AssignError> {
        let key = key.into();
        let value = serde_json::to_value(value).map_err(|source| invalid::<T>(Some(&key), source))?;
        self.insert(key, value);
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self) -> Result<T, AssignError> {
        // A map deserializes only from an owned value.
        serde_json::from_value(Value::Object(self.clone())).map_err(|source| invalid::<T>(None, source))
    }
}

fn invalid<T: ?Sized>(key: Option<&str>, source: serde_json::Error) -> AssignError {
    AssignError::Invalid { key: key.map(str::to_owned), type_name: std::any::type_name::<T>(), source }
}
