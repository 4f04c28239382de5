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
//!   rename) and checked against its name (its SHA-256) when read back, and beside it the
//!   owner file `<id>.veil-owner` (the SHA-256 of the owner token the keys were first uploaded
//!   with, created once with a hard link that fails when it exists, so the first owner wins
//!   even between replicas). Files stay until `DELETE /keys/{id}` by their owner or until the
//!   quota ([`DiskStore::enforce_quota`], `--key-dir-max-mb`) evicts the least recently used
//!   ones (by modification time, which [`DiskStore::touch`] moves forward on use); several
//!   servers may share a directory.
//!
//! Ownership: an upload may carry an *owner token* (`Authorization: Bearer <token>`, a secret
//! the client keeps next to its keys). The store keeps only its SHA-256 ([`owner_hash`]);
//! `DELETE` needs a token of that hash. Re-uploads never change an owner.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use veil_runtime::CompressedServerKeys;

/// Length of a key id in hex digits (SHA-256).
pub const KEY_ID_HEX_LEN: usize = 64;

/// File name extension of stored keys.
const EXT: &str = "veil-keys";

/// File name extension of an owner file (the SHA-256 of the owner token, in hex).
const OWNER_EXT: &str = "veil-owner";

/// Shortest and longest owner token accepted (visible ASCII, no spaces).
pub const OWNER_TOKEN_LEN: std::ops::RangeInclusive<usize> = 32..=256;

/// The hash a server keeps of an owner token: its SHA-256 in hex, or a message saying why the
/// token is refused (too short or long, or not visible ASCII).
pub fn owner_hash(token: &str) -> Result<String, String> {
    if !OWNER_TOKEN_LEN.contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "an owner token is {} to {} visible ASCII characters without spaces (veil client keeps a random one in owner.veil-token next to the keys)",
            OWNER_TOKEN_LEN.start(),
            OWNER_TOKEN_LEN.end()
        ));
    }
    Ok(hash_hex(token.as_bytes()))
}

/// Whether two hex hashes are equal, in time independent of where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

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

    /// The owner file of `id`.
    pub fn owner_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{OWNER_EXT}"))
    }

    /// Whether the file of `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        self.path(id).is_file()
    }

    /// Whether the file of `id` exists; if so it is marked as used now (its modification
    /// time, what the quota's least-recently-used order reads), at most once a second.
    pub fn touch(&self, id: &str) -> bool {
        let path = self.path(id);
        let Ok(meta) = std::fs::metadata(&path) else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        let now = std::time::SystemTime::now();
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_none_or(|age| age >= std::time::Duration::from_secs(1));
        if stale {
            // Best effort: a file deleted meanwhile, or a file system without times, only
            // makes the eviction order less exact.
            if let Ok(f) = std::fs::File::open(&path) {
                let _ = f.set_modified(now);
            }
        }
        true
    }

    /// The SHA-256 of the owner token of `id` (`None`: no owner file, the keys were uploaded
    /// without a token).
    pub fn owner(&self, id: &str) -> Result<Option<String>, String> {
        let path = self.owner_path(id);
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() == KEY_ID_HEX_LEN => Ok(Some(s.trim().to_string())),
            Ok(_) => Err(format!(
                "key store: {} is damaged (not a SHA-256 in hex); delete it",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("key store: cannot read {}: {e}", path.display())),
        }
    }

    /// Makes `owner` (an [`owner_hash`]) the owner of `id` unless it has one: the file is
    /// written to a temporary name and hard-linked to its final name, which fails when that
    /// exists, so of two replicas claiming at once exactly one wins. The owner afterwards.
    pub fn claim(&self, id: &str, owner: &str) -> Result<String, String> {
        let path = self.owner_path(id);
        if let Some(o) = self.owner(id)? {
            return Ok(o);
        }
        let tmp = self.temp_name(id);
        let err = |what: &str, e: std::io::Error| {
            let _ = std::fs::remove_file(&tmp);
            format!("key store {}: cannot {what}: {e}", self.dir.display())
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| err("create a file", e))?;
        f.write_all(owner.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| err("write an owner file", e))?;
        drop(f);
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(owner.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self
                .owner(id)?
                .ok_or_else(|| format!("key store: {} vanished", path.display())),
            Err(e) => Err(format!(
                "key store {}: cannot create {}: {e}",
                self.dir.display(),
                path.display()
            )),
        }
    }

    /// A temporary file name in the directory, unique among processes, threads and machines
    /// sharing it.
    fn temp_name(&self, id: &str) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.dir.join(format!(
            ".tmp-{id}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }

    /// Writes `bytes` (whose SHA-256 is `id`) atomically: a temporary file in the same
    /// directory, flushed to disk, then renamed over the final name. An existing file is
    /// left as it is (same id, same content).
    pub fn put(&self, id: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(id);
        if path.is_file() {
            return Ok(());
        }
        let tmp = self.temp_name(id);
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

    /// Deletes the keys of `id` and then their owner file; whether there were keys.
    pub fn delete(&self, id: &str) -> Result<bool, String> {
        let remove = |path: PathBuf| match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("key store: cannot delete {}: {e}", path.display())),
        };
        let had = remove(self.path(id))?;
        remove(self.owner_path(id))?;
        Ok(had)
    }

    /// Bytes of stored keys (owner files are a few bytes and not counted).
    pub fn usage(&self) -> u64 {
        self.entries().iter().map(|e| e.1).sum()
    }

    /// Stored keys: id, size in bytes and last use (modification time).
    fn entries(&self) -> Vec<(String, u64, std::time::SystemTime)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let id = parse_key_id(name.strip_suffix(&format!(".{EXT}"))?)?;
            let meta = e.metadata().ok()?;
            Some((id, meta.len(), meta.modified().ok()?))
        })
        .collect()
    }

    /// Deletes the least recently used key sets (oldest modification time first, never
    /// `keep`) until the stored keys take at most `max_bytes`; the ids deleted.
    ///
    /// Replicas sharing the directory may run this at the same time: each deletes from the
    /// same oldest-first order, a file another one deleted first is skipped, so together
    /// they may delete a few more sets than one would, never one in use more recently than
    /// a set that stays. A set deleted while another replica holds it in memory is dropped
    /// there at its next request (404; the client uploads it again).
    pub fn enforce_quota(&self, max_bytes: u64, keep: &str) -> Result<Vec<String>, String> {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= max_bytes {
            return Ok(Vec::new());
        }
        entries.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        let mut evicted = Vec::new();
        for (id, size, _) in entries {
            if total <= max_bytes {
                break;
            }
            if id == keep {
                continue;
            }
            if self.delete(&id)? {
                evicted.push(id);
            }
            total = total.saturating_sub(size);
        }
        Ok(evicted)
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
        // Owners: the first claim wins, and deleting removes the owner file too.
        let (a, b) = (hash_hex(b"owner a"), hash_hex(b"owner b"));
        assert_eq!(s.owner(&id).unwrap(), None);
        assert_eq!(s.claim(&id, &a).unwrap(), a);
        assert_eq!(s.claim(&id, &b).unwrap(), a);
        assert_eq!(s2.owner(&id).unwrap(), Some(a.clone()));
        assert!(s.delete(&id).unwrap());
        assert!(!s.delete(&id).unwrap());
        assert_eq!(s.owner(&id).unwrap(), None);
        assert_eq!(s.get(&id).unwrap(), None);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn owner_tokens_are_checked_and_compared_whole() {
        assert!(owner_hash("short").is_err());
        assert!(owner_hash(&"x".repeat(257)).is_err());
        assert!(owner_hash(&format!("{} {}", "a".repeat(20), "b".repeat(20))).is_err());
        let h = owner_hash(&"a".repeat(64)).unwrap();
        assert_eq!(h, hash_hex("a".repeat(64).as_bytes()));
        assert!(same_hash(&h, &h.clone()));
        assert!(!same_hash(&h, &owner_hash(&"b".repeat(64)).unwrap()));
        assert!(!same_hash(&h, &h[1..]));
    }

    #[test]
    fn the_quota_evicts_the_least_recently_used_keys() {
        let dir = tempdir("quota");
        let s = DiskStore::open(&dir).unwrap();
        let put = |tag: &str| {
            let bytes = tag.repeat(100).into_bytes();
            let id = hash_hex(&bytes);
            s.put(&id, &bytes).unwrap();
            s.claim(&id, &hash_hex(tag.as_bytes())).unwrap();
            id
        };
        let set_age = |id: &str, secs: u64| {
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
            std::fs::File::open(s.path(id))
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        let (a, b, c) = (put("a"), put("b"), put("c"));
        set_age(&a, 300);
        set_age(&b, 200);
        set_age(&c, 100);
        assert_eq!(s.usage(), 300);
        // a is used now: b becomes the least recently used.
        assert!(s.touch(&a));
        assert!(!s.touch(&hash_hex(b"none")));
        assert_eq!(s.enforce_quota(300, &c).unwrap(), Vec::<String>::new());
        assert_eq!(s.enforce_quota(200, &c).unwrap(), vec![b.clone()]);
        assert!(!s.contains(&b) && s.owner(&b).unwrap().is_none());
        // The kept id stays even when it alone is over the quota.
        assert_eq!(s.enforce_quota(50, &c).unwrap(), vec![a.clone()]);
        assert_eq!(s.ids(), vec![c.clone()]);
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
