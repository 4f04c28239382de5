//! The key store of a server: evaluation keys by *key id*, the SHA-256 of their canonical
//! (seeded, compressed) encoding.
//!
//! The id is derived from the key material itself ([`key_id`]), so nobody can claim an id for
//! keys other than the ones it names: an upload is stored under the hash of what was uploaded,
//! identical uploads are idempotent, and different keys never share an id (short of a SHA-256
//! collision). The id is not the key *generation* id that ciphertexts carry (a hash of the
//! secret keys): a run checks that its inputs were encrypted under the generation the stored
//! keys were made for.
//!
//! Two layers:
//! - memory ([`Lru`]): at most `max_keys` expanded key sets, least recently used evicted first
//!   (or, without eviction, new uploads refused when full);
//! - disk ([`DiskStore`], optional, `veil serve --key-dir`): one file `<id>.veil-keys` per key
//!   set holding the canonical compressed keys, written atomically (temporary file, fsync,
//!   rename) and checked against its name (its SHA-256) when read back. Files stay until
//!   `DELETE /keys/{id}`; several servers may share a directory.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use veil_runtime::CompressedServerKeys;

/// Length of a key id in hex digits (SHA-256).
pub const KEY_ID_HEX_LEN: usize = 64;

/// File name extension of stored keys.
const EXT: &str = "veil-keys";

/// The key id of evaluation keys and their canonical encoding (what the store keeps): the
/// SHA-256, in lowercase hex, of [`CompressedServerKeys::to_bytes`].
pub fn key_id(keys: &CompressedServerKeys) -> Result<(String, Vec<u8>), String> {
    let bytes = keys
        .to_bytes()
        .map_err(|e| format!("cannot encode the evaluation keys: {e}"))?;
    Ok((hash_hex(&bytes), bytes))
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `id` if it is a well-formed key id (64 hex digits, any case; returned lowercase).
pub fn parse_key_id(id: &str) -> Option<String> {
    let id = id.trim();
    (id.len() == KEY_ID_HEX_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| id.to_ascii_lowercase())
}

/// A map of at most `capacity` entries that forgets the least recently used one to make room
/// (when `evict`), else refuses new entries when full.
#[derive(Debug)]
pub struct Lru<V> {
    map: HashMap<String, (V, u64)>,
    tick: u64,
    capacity: usize,
    evict: bool,
}

/// What [`Lru::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The id was there already (the entry is kept, marked used).
    Existing,
    /// Stored; the ids evicted to make room.
    New(Vec<String>),
    /// Full and eviction is off (or the capacity is 0): not stored.
    Full,
}

impl<V: Clone> Lru<V> {
    /// An empty map of `capacity` entries.
    pub fn new(capacity: usize, evict: bool) -> Self {
        Lru {
            map: HashMap::new(),
            tick: 0,
            capacity,
            evict,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether a new entry would be refused ([`Inserted::Full`]).
    pub fn refuses_new(&self) -> bool {
        self.capacity == 0 || (!self.evict && self.map.len() >= self.capacity)
    }

    /// The entry of `id`, marked as used now.
    pub fn get(&mut self, id: &str) -> Option<V> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(id).map(|(v, used)| {
            *used = t;
            v.clone()
        })
    }

    /// Whether `id` is held (without marking it used).
    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// Stores `v` under `id` unless it is there already, evicting the least recently used
    /// entries to make room.
    pub fn insert(&mut self, id: &str, v: V) -> Inserted {
        self.tick += 1;
        if let Some((_, used)) = self.map.get_mut(id) {
            *used = self.tick;
            return Inserted::Existing;
        }
        if self.refuses_new() {
            return Inserted::Full;
        }
        let mut evicted = Vec::new();
        while self.map.len() >= self.capacity {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.map.remove(&k);
                    evicted.push(k);
                }
                None => break,
            }
        }
        self.map.insert(id.to_string(), (v, self.tick));
        Inserted::New(evicted)
    }

    /// Forgets `id`; whether it was held.
    pub fn remove(&mut self, id: &str) -> bool {
        self.map.remove(id).is_some()
    }
}

/// Compressed evaluation keys on disk, one file per key id (see the module documentation).
#[derive(Clone, Debug)]
pub struct DiskStore {
    dir: PathBuf,
}

impl DiskStore {
    /// A store in `dir`, created if missing; fails with a message naming the directory when it
    /// cannot be created or written.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "--key-dir {}: cannot create the directory: {e}",
                dir.display()
            )
        })?;
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| {
                format!(
                    "--key-dir {}: cannot write in the directory: {e}",
                    dir.display()
                )
            })?;
        Ok(DiskStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `id` (a parsed key id: hex digits only, so no path tricks).
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{EXT}"))
    }

    /// Whether the file of `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        self.path(id).is_file()
    }

    /// Writes `bytes` (whose SHA-256 is `id`) atomically: a temporary file in the same
    /// directory, flushed to disk, then renamed over the final name. An existing file is
    /// left as it is (same id, same content).
    pub fn put(&self, id: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(id);
        if path.is_file() {
            return Ok(());
        }
        // Unique among processes and threads, and among machines sharing the directory.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = self.dir.join(format!(
            ".tmp-{id}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let err = |what: &str, e: std::io::Error| {
            let _ = std::fs::remove_file(&tmp);
            format!("key store {}: cannot {what}: {e}", self.dir.display())
        };
        let mut f = std::fs::File::create(&tmp).map_err(|e| err("create a file", e))?;
        f.write_all(bytes).map_err(|e| err("write keys", e))?;
        f.sync_all().map_err(|e| err("write keys", e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| err("rename a file", e))?;
        Ok(())
    }

    /// The bytes stored under `id`: `Ok(None)` when there is no such file, an error when it
    /// cannot be read or its content does not hash to `id` (a damaged file).
    pub fn get(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        let path = self.path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("key store: cannot read {}: {e}", path.display())),
        };
        if hash_hex(&bytes) != id {
            return Err(format!(
                "key store: {} is damaged (its content does not match its name); delete it and upload the keys again",
                path.display()
            ));
        }
        Ok(Some(bytes))
    }

    /// Deletes the file of `id`; whether there was one.
    pub fn delete(&self, id: &str) -> Result<bool, String> {
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!(
                "key store: cannot delete {}: {e}",
                self.path(id).display()
            )),
        }
    }

    /// Key ids stored.
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            parse_key_id(name.strip_suffix(&format!(".{EXT}"))?)
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut m = Lru::new(2, true);
        assert_eq!(m.insert("a", 1), Inserted::New(vec![]));
        assert_eq!(m.insert("b", 2), Inserted::New(vec![]));
        assert_eq!(m.get("a"), Some(1));
        assert_eq!(m.insert("c", 3), Inserted::New(vec!["b".into()]));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.insert("a", 9), Inserted::Existing);
        assert_eq!(m.get("a"), Some(1), "the first value stays");
        assert!(m.remove("a"));
        assert!(!m.remove("a"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn lru_without_eviction_refuses_when_full() {
        let mut m = Lru::new(1, false);
        assert_eq!(m.insert("a", 1), Inserted::New(vec![]));
        assert!(m.refuses_new());
        assert_eq!(m.insert("b", 2), Inserted::Full);
        assert_eq!(m.insert("a", 2), Inserted::Existing);
        let mut z = Lru::<u8>::new(0, true);
        assert_eq!(z.insert("a", 1), Inserted::Full);
    }

    #[test]
    fn key_ids_are_parsed_strictly() {
        let id = hash_hex(b"x");
        assert_eq!(id.len(), KEY_ID_HEX_LEN);
        assert_eq!(parse_key_id(&id.to_uppercase()), Some(id.clone()));
        assert_eq!(parse_key_id("0123456789abcdef"), None);
        assert_eq!(parse_key_id(&format!("../{}", &id[3..])), None);
        assert_eq!(parse_key_id(""), None);
    }

    fn tempdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("veil-server-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn disk_store_writes_checks_and_deletes() {
        let dir = tempdir("disk");
        let s = DiskStore::open(&dir).unwrap();
        let bytes = b"some key bytes".to_vec();
        let id = hash_hex(&bytes);
        assert_eq!(s.get(&id).unwrap(), None);
        s.put(&id, &bytes).unwrap();
        s.put(&id, &bytes).unwrap();
        assert_eq!(s.get(&id).unwrap(), Some(bytes.clone()));
        assert_eq!(s.ids(), vec![id.clone()]);
        // A second store on the same directory (another replica) sees it.
        let s2 = DiskStore::open(&dir).unwrap();
        assert!(s2.contains(&id));
        // A damaged file is an error naming the file, not keys.
        std::fs::write(s.path(&id), b"tampered").unwrap();
        let e = s.get(&id).unwrap_err();
        assert!(e.contains("damaged") && e.contains(&id), "{e}");
        assert!(s.delete(&id).unwrap());
        assert!(!s.delete(&id).unwrap());
        assert_eq!(s.get(&id).unwrap(), None);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disk_store_refuses_an_unusable_directory() {
        let dir = tempdir("file");
        std::fs::write(&dir, b"a file, not a directory").unwrap();
        let e = DiskStore::open(&dir).unwrap_err();
        assert!(e.contains("--key-dir"), "{e}");
        std::fs::remove_file(&dir).unwrap();
    }
}
