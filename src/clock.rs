use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The source of "now" handed to domain code. Production reads the system clock; tests hold
/// the offset and move time forward without sleeping (code expiry, lockouts, grace periods).
#[derive(Clone, Default)]
pub struct Clock {
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that can be advanced from the outside; returns the handle that moves it.
    pub fn adjustable() -> (Self, Arc<AtomicI64>) {
        let offset = Arc::new(AtomicI64::new(0));
        (Self { offset: Some(offset.clone()) }, offset)
    }

    /// Unix seconds, UTC.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        real + self.offset.as_ref().map_or(0, |o| o.load(Ordering::Relaxed))
    }
}
