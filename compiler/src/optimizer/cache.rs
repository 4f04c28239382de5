//! Memoised optimization: the compiler asks for the same problems over and over (every compile
//! of an unchanged model), so whole answers are cached by the exact problem.

use super::{optimize, OptimizeError, Problem, Solution};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A thread-safe cache of optimizer answers keyed by the exact problem (floats by bit pattern).
#[derive(Debug, Default)]
pub struct OptimizerCache {
    map: Mutex<HashMap<String, Result<Arc<Solution>, OptimizeError>>>,
}

impl OptimizerCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer for `problem`, computed on the first request and shared afterwards (errors
    /// are cached too: an infeasible request stays infeasible).
    pub fn optimize(&self, problem: &Problem) -> Result<Arc<Solution>, OptimizeError> {
        let key = key(problem);
        if let Some(r) = self.lock().get(&key) {
            return r.clone();
        }
        // Computed outside the lock: concurrent first requests may both compute; both answers
        // are identical (the optimizer is deterministic).
        let r = optimize(problem).map(Arc::new);
        self.lock().entry(key).or_insert(r).clone()
    }

    /// Number of cached problems.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Result<Arc<Solution>, OptimizeError>>> {
        // A panic while holding the lock cannot leave the map inconsistent (single insert).
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Exact key: every float by its bits, so `1e-5` and `1.0000000001e-5` never collide.
fn key(p: &Problem) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for q in &p.partitions {
        let _ = write!(
            s,
            "{}:{:x}:{}:{};",
            q.precision,
            q.norm2.to_bits(),
            q.tlus,
            q.levelled
        );
    }
    s.push('|');
    for c in &p.crossings {
        let _ = write!(s, "{}>{}:{};", c.from, c.to, c.count);
    }
    let bits = |x: Option<f64>| x.map_or(u64::MAX, f64::to_bits);
    let _ = write!(
        s,
        "|{:x}:{:x}|{}:{:?}:{:?}:{:?}:{}",
        bits(p.target.p_error),
        bits(p.target.global_p_error),
        p.single_set,
        p.noise.distribution,
        p.noise.modulus_switch,
        p.noise.ks_modulus,
        p.objective.name()
    );
    s
}

/// [`OptimizerCache::optimize`] on a process-wide cache.
pub fn optimize_cached(problem: &Problem) -> Result<Arc<Solution>, OptimizeError> {
    static CACHE: OnceLock<OptimizerCache> = OnceLock::new();
    CACHE.get_or_init(OptimizerCache::new).optimize(problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::ErrorTarget;

    #[test]
    fn caches_answers_and_errors() {
        let c = OptimizerCache::new();
        let p = Problem::single(3, 1.0, 1, ErrorTarget::p_error(1e-5));
        let a = c.optimize(&p).unwrap();
        let b = c.optimize(&p).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, optimize(&p).unwrap());
        let bad = Problem::single(30, 1.0, 1, ErrorTarget::p_error(1e-5));
        assert!(c.optimize(&bad).is_err());
        assert_eq!(c.len(), 2);
        let other = Problem::single(3, 1.0, 1, ErrorTarget::p_error(1.000_000_001e-5));
        c.optimize(&other).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(*optimize_cached(&p).unwrap(), *a);
    }
}
