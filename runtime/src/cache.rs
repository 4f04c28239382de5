//! An opt-in on-disk cache of generated keys, keyed by the parameter sets' fingerprints
//! ([`veil_ir::ParamSet::fingerprint`]), the seed and the key requirements.
//!
//! **Security: the cache stores client secret keys in plain files** (mode 0600 on Unix). Use it
//! for tests, benchmarks and development only, never for real data.

use crate::error::{Result, RuntimeError};
use crate::keys::{ClientKeys, CompressedServerKeys, KeyRequirements, KeygenOptions};
use std::path::{Path, PathBuf};
use veil_ir::{KeyId, ParamSet};

/// A directory of cached keys (see the module documentation: it holds secrets).
#[derive(Clone, Debug)]
pub struct KeyCache {
    dir: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn key_code(k: KeyId) -> String {
    k.to_string()
}

impl KeyCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn stem(params: &[ParamSet], req: &KeyRequirements, opts: &KeygenOptions) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"veil-key-cache-v1");
        for p in params {
            h.update(p.fingerprint().to_le_bytes());
        }
        h.update(opts.seed.to_le_bytes());
        for b in &req.bsk {
            h.update(format!("bsk{b};"));
        }
        for (a, b) in &req.ksk {
            h.update(format!("ksk{}>{};", key_code(*a), key_code(*b)));
        }
        let d = h.finalize();
        d[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Loads cached keys for these parameters, seed and requirements, or generates and stores
    /// them. A corrupted cache entry is regenerated.
    pub fn get_or_generate(
        &self,
        params: &[ParamSet],
        req: &KeyRequirements,
        opts: &KeygenOptions,
    ) -> Result<(ClientKeys, CompressedServerKeys)> {
        let stem = Self::stem(params, req, opts);
        let cp = self.dir.join(format!("{stem}.client"));
        let sp = self.dir.join(format!("{stem}.server"));
        if let (Ok(c), Ok(s)) = (std::fs::read(&cp), std::fs::read(&sp)) {
            if let (Ok(ck), Ok(sk)) = (
                ClientKeys::from_bytes(&c),
                CompressedServerKeys::from_bytes(&s),
            ) {
                if ck.key_id() == sk.key_id() && ck.params() == params {
                    // Keys generated with the security check were stored; re-check for loads.
                    crate::params::check_all(params, opts.allow_insecure_for_tests)?;
                    return Ok((ck, sk));
                }
            }
        }
        let ck = ClientKeys::generate(params, opts)?;
        let sk = ck.server_keys(req, None)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        write_private(&cp, &ck.to_bytes()?)?;
        write_private(&sp, &sk.to_bytes()?)?;
        Ok((ck, sk))
    }
}

/// Writes a file readable only by its owner, atomically (temporary file then rename).
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(|e| io(&tmp, e))?;
        std::io::Write::write_all(&mut f, data).map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}
