//! Message and sender ids as the channel state keeps them: the text shared
//! (one allocation per id, however many places refer to it) and its hash
//! computed once, carried next to the pointer.
//!
//! Why: a channel looks ids up in several tables per received message (the
//! log, the incoming buffer and its reverse index, the SDS-R buffers, the
//! bounded id sets). With `Arc<str>` keys (before), every probe hashed the 64-byte
//! text again, every growth of a table re-read and re-hashed every key (a
//! cache miss per key), and every candidate was compared by reading the
//! text behind the pointer. With [`Id`], a table slot holds the hash
//! itself: growth copies slots without touching the texts, a probe compares
//! hashes first, and two handles to the same allocation compare equal
//! without reading it. A lookup by a borrowed string ([`Key`]) hashes it
//! once and can be reused for every table.
//!
//! The hash is a seeded quality hash (foldhash), seeded randomly once per
//! process: a remote peer that chooses ids cannot make them collide. Equality
//! always compares the texts (after the hashes), so a hash collision costs a
//! comparison, never a wrong answer.

use arcstr::ArcStr;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::OnceLock;

/// The process-wide hasher of id texts.
fn seed() -> &'static foldhash::quality::RandomState {
    static SEED: OnceLock<foldhash::quality::RandomState> = OnceLock::new();
    SEED.get_or_init(foldhash::quality::RandomState::default)
}

/// The hash of an id text (the same for every table in this process).
#[inline]
pub(crate) fn hash_text(text: &str) -> u64 {
    seed().hash_one(text)
}

/// A shared id with its hash: 16 bytes (the text is an [`ArcStr`], a thin
/// pointer to a reference count, the length and the bytes in one allocation).
#[derive(Clone)]
pub(crate) struct Id {
    hash: u64,
    text: ArcStr,
}

impl Id {
    /// An id whose hash is already known (from [`Key::hash`] of the same text).
    #[inline]
    pub fn with_key(key: &Key<'_>) -> Id {
        Id {
            hash: key.hash,
            text: ArcStr::from(key.text),
        }
    }

    /// An id for `key` that shares `text`, an allocation of the same text
    /// made elsewhere (no copy).
    #[inline]
    pub fn with_text(key: &Key<'_>, text: ArcStr) -> Id {
        debug_assert_eq!(key.text, text.as_str());
        Id {
            hash: key.hash,
            text,
        }
    }

    /// Whether both are handles to the same allocation.
    #[inline]
    pub fn ptr_eq(a: &Id, b: &Id) -> bool {
        ArcStr::ptr_eq(&a.text, &b.text)
    }

    /// The shared text.
    #[inline]
    pub fn text(&self) -> &ArcStr {
        &self.text
    }

    /// A lookup key for this id (no hashing: the hash is carried).
    #[inline]
    pub fn key(&self) -> Key<'_> {
        Key {
            hash: self.hash,
            text: &self.text,
        }
    }
}

impl Default for Id {
    /// The empty id.
    fn default() -> Id {
        Id::from("")
    }
}

impl Deref for Id {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl From<&str> for Id {
    #[inline]
    fn from(text: &str) -> Id {
        Id {
            hash: hash_text(text),
            text: ArcStr::from(text),
        }
    }
}

impl From<String> for Id {
    fn from(text: String) -> Id {
        Id {
            hash: hash_text(&text),
            text: ArcStr::from(text),
        }
    }
}

impl From<&Id> for Id {
    /// Another handle to the same text (for map entries made by reference).
    #[inline]
    fn from(id: &Id) -> Id {
        id.clone()
    }
}

impl From<&String> for Id {
    fn from(text: &String) -> Id {
        Id::from(text.as_str())
    }
}

impl PartialEq for Id {
    #[inline]
    fn eq(&self, other: &Id) -> bool {
        self.hash == other.hash
            && (ArcStr::ptr_eq(&self.text, &other.text) || *self.text == *other.text)
    }
}

impl Eq for Id {}

impl Hash for Id {
    /// Writes the carried hash: tables keyed by ids use [`PassThrough`].
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Id) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Id {
    /// Bytewise order of the texts (the log's tie-break), not of the hashes.
    #[inline]
    fn cmp(&self, other: &Id) -> std::cmp::Ordering {
        if ArcStr::ptr_eq(&self.text, &other.text) {
            return std::cmp::Ordering::Equal;
        }
        self.text.as_bytes().cmp(other.text.as_bytes())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A borrowed id text with its hash: looks an id up in any [`IdMap`] or
/// [`IdSet`], hashing the text once for all of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key<'a> {
    hash: u64,
    text: &'a str,
}

impl<'a> Key<'a> {
    /// Hashes `text`.
    #[inline]
    pub fn new(text: &'a str) -> Key<'a> {
        Key {
            hash: hash_text(text),
            text,
        }
    }

    /// A key for `text` with its hash if the caller has it already
    /// ([`hash_text`] of `text`, computed earlier in this process), else
    /// hashing it here.
    #[inline]
    pub fn hashed(text: &'a str, hash: Option<u64>) -> Key<'a> {
        match hash {
            Some(hash) => Key { hash, text },
            None => Key::new(text),
        }
    }

    /// Whether both keys have the same text (hashes first).
    #[inline]
    pub fn same(&self, other: &Key<'_>) -> bool {
        self.hash == other.hash && self.text == other.text
    }

    /// Whether `id` has this text (see [`hashbrown::Equivalent`]).
    #[inline]
    pub fn equivalent(&self, id: &Id) -> bool {
        hashbrown::Equivalent::equivalent(self, id)
    }
}

impl Hash for Key<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl hashbrown::Equivalent<Id> for Key<'_> {
    /// Same hash, then the same text: equal bytes, unless the key was made
    /// from a handle to this very allocation (the same data pointer means
    /// the same text, and the bytes need no comparison).
    #[inline]
    fn equivalent(&self, id: &Id) -> bool {
        self.hash == id.hash
            && (std::ptr::eq(self.text.as_ptr(), id.text.as_ptr()) || *self.text == *id.text)
    }
}

/// Anything an id can be looked up by: a text (hashed on the spot), an
/// [`Id`] (its carried hash) or a [`Key`].
pub(crate) trait AsKey {
    /// The lookup key.
    fn as_key(&self) -> Key<'_>;
}

impl AsKey for str {
    #[inline]
    fn as_key(&self) -> Key<'_> {
        Key::new(self)
    }
}

impl AsKey for String {
    #[inline]
    fn as_key(&self) -> Key<'_> {
        Key::new(self)
    }
}

impl AsKey for Id {
    #[inline]
    fn as_key(&self) -> Key<'_> {
        self.key()
    }
}

impl AsKey for Key<'_> {
    #[inline]
    fn as_key(&self) -> Key<'_> {
        *self
    }
}

/// A [`BuildHasher`] for keys that hash themselves ([`Id`], [`Key`]): the
/// one `u64` they write is the hash.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassThrough;

/// The hasher of [`PassThrough`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Not used by ids; mixes the bytes in so that any other key still
    /// hashes correctly (if slowly).
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x5851_F42D_4C95_7F2D);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    #[inline]
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

/// A hash map keyed by ids (see the module documentation).
pub(crate) type IdMap<V> = hashbrown::HashMap<Id, V, PassThrough>;

/// A hash set of ids.
pub(crate) type IdSet = hashbrown::HashSet<Id, PassThrough>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_are_equal_ids_and_keys_find_them() {
        let a = Id::from("abc");
        let b = Id::from(String::from("abc"));
        assert!(!Id::ptr_eq(&a, &b));
        assert_eq!(a, b);
        assert_ne!(a, Id::from("abd"));
        let mut m: IdMap<u32> = IdMap::default();
        m.insert(a.clone(), 1);
        assert_eq!(m.get(&Key::new("abc")), Some(&1));
        assert_eq!(m.get(&b), Some(&1));
        assert_eq!(m.get(&Key::new("abd")), None);
        let k = Key::new("xyz");
        let x = Id::with_key(&k);
        assert_eq!(x, Id::from("xyz"));
        assert_eq!(x.key().hash, k.hash);
    }

    /// Two different texts with the same hash (forced: a real collision of
    /// the seeded hash cannot be produced on purpose) stay two ids.
    #[test]
    fn equal_hashes_still_compare_texts() {
        let a = Id {
            hash: 7,
            text: ArcStr::from("a"),
        };
        let b = Id {
            hash: 7,
            text: ArcStr::from("b"),
        };
        assert_ne!(a, b);
        let mut m: IdMap<u32> = IdMap::default();
        m.insert(a.clone(), 1);
        m.insert(b.clone(), 2);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&a), Some(&1));
        assert_eq!(m.get(&b), Some(&2));
        let kb = Key { hash: 7, text: "b" };
        assert_eq!(m.get(&kb), Some(&2));
        assert_eq!(m.get(&Key { hash: 7, text: "c" }), None);
        assert!(!Key { hash: 7, text: "a" }.equivalent(&b));
    }

    #[test]
    fn order_is_bytewise_text_order() {
        let mut v: Vec<Id> = ["b", "ab", "a", "ba"].into_iter().map(Id::from).collect();
        v.sort();
        let s: Vec<&str> = v.iter().map(|i| &**i).collect();
        assert_eq!(s, ["a", "ab", "b", "ba"]);
    }

    #[test]
    fn many_ids_survive_table_growth() {
        let ids: Vec<Id> = (0..5000).map(|i| Id::from(format!("{i:064}"))).collect();
        let mut m: IdMap<usize> = IdMap::default();
        for (i, id) in ids.iter().enumerate() {
            m.insert(id.clone(), i);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(m.get(&Key::new(id)), Some(&i));
        }
    }
}
