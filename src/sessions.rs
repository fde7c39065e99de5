//! The in-memory state of the protocol roles (signing nonces, ceremony and repair sessions),
//! held by the node without the node knowing their types: each role defines its own and finds
//! it by type. Expiry and sealing reach every role's state through [`RoleState`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::config::Timeouts;

/// What every role's in-memory state must do for the node.
pub trait RoleState: Any + Send + Sync {
    /// Drops what is past its deadline; dropping zeroizes nonces and ceremony secrets.
    fn expire(&self, timeouts: &Timeouts);
    /// Drops everything: the node is sealing.
    fn clear(&self);
}

type Entry = (Arc<dyn Any + Send + Sync>, Arc<dyn RoleState>);

#[derive(Default)]
pub struct Sessions {
    by_type: RwLock<HashMap<TypeId, Entry>>,
}

impl Sessions {
    /// The role state of type `T`, created empty on first use.
    pub fn of<T: RoleState + Default>(&self) -> Arc<T> {
        let id = TypeId::of::<T>();
        let found = self.by_type.read().get(&id).map(|(any, _)| any.clone());
        let any = found.unwrap_or_else(|| {
            let mut map = self.by_type.write();
            let (any, _) = map.entry(id).or_insert_with(|| {
                let state = Arc::new(T::default());
                (
                    state.clone() as Arc<dyn Any + Send + Sync>,
                    state as Arc<dyn RoleState>,
                )
            });
            any.clone()
        });
        // Stored under T's own TypeId, so it is a T.
        any.downcast::<T>()
            .expect("role state stored under its own type")
    }

    pub fn expire(&self, timeouts: &Timeouts) {
        for (_, state) in self.by_type.read().values() {
            state.expire(timeouts);
        }
    }

    pub fn clear(&self) {
        for (_, state) in self.by_type.read().values() {
            state.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Counter(Mutex<Vec<&'static str>>);

    impl RoleState for Counter {
        fn expire(&self, _: &Timeouts) {
            self.0.lock().push("expire");
        }
        fn clear(&self) {
            self.0.lock().push("clear");
        }
    }

    #[test]
    fn each_type_has_one_state_that_expiry_and_sealing_reach() {
        let sessions = Sessions::default();
        sessions.of::<Counter>().0.lock().push("used");
        sessions.expire(&Timeouts::default());
        sessions.clear();
        assert_eq!(
            *sessions.of::<Counter>().0.lock(),
            ["used", "expire", "clear"]
        );
    }
}
