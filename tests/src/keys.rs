//! Keys shared between compiled programs: key generation (bootstrap keys above all) costs
//! seconds, and many test programs compile to the same parameter sets. A [`KeyCache`]
//! generates the keys of a parameter set and key requirement once and hands them to every
//! program that needs exactly those.

use std::collections::HashMap;
use veil_compiler::program::Program;
use veil_runtime::{ClientKeys, KeyRequirements, KeygenOptions, ServerKeys};

/// Client and server keys by (parameter sets, needed keys), generated on first use from one
/// fixed seed.
pub struct KeyCache {
    seed: u128,
    keys: HashMap<String, (ClientKeys, ServerKeys)>,
}

impl KeyCache {
    /// An empty cache whose keys are generated from `seed`.
    pub fn new(seed: u128) -> Self {
        KeyCache {
            seed,
            keys: HashMap::new(),
        }
    }

    /// The keys of `p`: generated the first time its parameter sets and key requirements are
    /// seen, reused afterwards. `Err` says why generation failed.
    pub fn get(&mut self, p: &Program) -> Result<&(ClientKeys, ServerKeys), String> {
        let req = KeyRequirements::of(&p.tfhe).map_err(|e| format!("key requirements: {e}"))?;
        let id = format!("{:?} {:?}", p.tfhe.params, req);
        if !self.keys.contains_key(&id) {
            let opts = KeygenOptions {
                seed: self.seed,
                ..Default::default()
            };
            let ck = ClientKeys::generate(&p.tfhe.params, &opts)
                .map_err(|e| format!("client keys: {e}"))?;
            let sk = ck
                .server_keys(&req, None)
                .map_err(|e| format!("server keys: {e}"))?
                .decompress();
            self.keys.insert(id.clone(), (ck, sk));
        }
        Ok(&self.keys[&id])
    }

    /// How many distinct key sets were generated.
    pub fn generated(&self) -> usize {
        self.keys.len()
    }
}
