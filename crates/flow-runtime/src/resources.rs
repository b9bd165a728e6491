//! Values nodes share, by type and key, created on first use: per execution (one database
//! transaction per connection, so every sink of an execution writes in it) or per engine (one
//! connection pool per connection URL).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flow_model::Connection;

#[derive(Default)]
pub struct Resources {
    map: Mutex<HashMap<(TypeId, String), Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources").finish_non_exhaustive()
    }
}

impl Resources {
    /// The value of type `T` under `key`, made by `make` the first time.
    pub fn get_or_try_insert_with<T, E>(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (TypeId::of::<T>(), key.to_owned());
        if let Some(existing) = map.get(&slot).and_then(|v| Arc::clone(v).downcast::<T>().ok()) {
            return Ok(existing);
        }
        let value = Arc::new(make()?);
        map.insert(slot, Arc::clone(&value) as Arc<dyn Any + Send + Sync>);
        Ok(value)
    }

    pub fn get_or_insert_with<T: Any + Send + Sync>(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        match self.get_or_try_insert_with::<T, std::convert::Infallible>(key, || Ok(make())) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

/// Where nodes look up named connections.
pub trait ConnectionSource: Send + Sync {
    fn connection(&self, name: &str) -> Option<Connection>;
}

/// No named connections (tests, hosts without a store).
#[derive(Debug, Default)]
pub struct NoConnections;

impl ConnectionSource for NoConnections {
    fn connection(&self, _name: &str) -> Option<Connection> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_made_once_per_type_and_key() {
        let r = Resources::default();
        let a = r.get_or_insert_with("x", || 1u32);
        let b = r.get_or_insert_with("x", || 2u32);
        let c = r.get_or_insert_with("y", || 3u32);
        let d = r.get_or_insert_with("x", || "other type");
        assert_eq!((*a, *b, *c, *d), (1, 1, 3, "other type"));
        let failed: Result<Arc<u64>, &str> = r.get_or_try_insert_with("z", || Err("no"));
        assert!(failed.is_err());
        assert_eq!(*r.get_or_insert_with("z", || 9u64), 9);
    }
}
