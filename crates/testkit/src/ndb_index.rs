//! Writes an NDB `Index.db` for generated databases (Debian's rpm has no `ndb` backend, so no
//! tool here can write one): rpm's container of index blobs (`lib/backend/ndb/rpmxdb.c`),
//! each blob a hash table of keys (`rpmidx.c`), laid out as rpm's own rebuild lays them out.
//!
//! Written from the format description, independently of hostready's reader, so the reader's
//! tests are not its own mirror image; the hash is pinned to rpm's by a unit test of the
//! reader with values rpm's C code printed.

use hostready_pkgdb::Header;

const PAGE: usize = 4096;
/// The tags rpm indexes that hostready's lookups use: Name, Providename, Basenames.
pub const INDEXED_TAGS: [u32; 3] = [1000, 1047, 1117];

/// One index entry: `(tag, key, package index, entry index)`.
pub type Entry = (u32, Vec<u8>, u32, u32);

/// Returns the index entries of NDB packages `1..=blobs.len()`, as rpm adds them: the name
/// (entry 0), each provide and each basename with its position in the header's array.
pub fn entries(blobs: &[Vec<u8>]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, b) in blobs.iter().enumerate() {
        let pkg = i as u32 + 1;
        let h = Header::parse(b).expect("generated header");
        if let Some(n) = h.string(1000).expect("name") {
            out.push((1000, n.into_bytes(), pkg, 0));
        }
        for tag in [1047, 1117] {
            for (j, s) in h
                .strings(tag)
                .expect("string array")
                .into_iter()
                .enumerate()
            {
                out.push((tag, s.into_bytes(), pkg, j as u32));
            }
        }
    }
    out
}

/// Returns the bytes of an `Index.db` holding `entries`, synced to `Packages.db` generation
/// `user_generation` (the container's user generation).
pub fn index_db(entries: &[Entry], user_generation: u32) -> Vec<u8> {
    let mut blobs = Vec::new();
    for tag in INDEXED_TAGS {
        let mine: Vec<&Entry> = entries.iter().filter(|e| e.0 == tag).collect();
        blobs.push((tag, idx_blob(&mine)));
    }
    // Container: header and slots in one page, then the blobs, each whole pages.
    let mut file = vec![0u8; PAGE];
    file[0..4].copy_from_slice(b"RpmX");
    put(&mut file, 8, 1);
    put(&mut file, 12, 1);
    put(&mut file, 16, PAGE as u32);
    put(&mut file, 20, user_generation);
    for at in (32..PAGE).step_by(16) {
        file[at..at + 3].copy_from_slice(b"Slo");
    }
    for (i, (tag, blob)) in blobs.into_iter().enumerate() {
        let at = 32 + 16 * i;
        put(&mut file, at + 4, tag);
        let start = (file.len() / PAGE) as u32;
        put(&mut file, at + 8, start);
        put(&mut file, at + 12, (blob.len() / PAGE) as u32);
        file.extend_from_slice(&blob);
    }
    file
}

fn put(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One index blob: header, slots (at most half used, as rpm keeps them), overflow words,
/// keys; padded to whole pages.
fn idx_blob(entries: &[&Entry]) -> Vec<u8> {
    let nslots = (entries.len() * 2).next_power_of_two().max(256);
    // Keys, each once, from offset 1 (0 means an empty slot).
    let mut keys = vec![0u8];
    let mut offsets = std::collections::HashMap::new();
    for e in entries {
        offsets.entry(e.1.clone()).or_insert_with(|| {
            let off = keys.len() as u32;
            let l = e.1.len();
            if l > 0 && l < 255 {
                keys.push(l as u8);
            } else if l < 65535 {
                keys.extend_from_slice(&[255, l as u8, (l >> 8) as u8]);
            } else {
                keys.extend_from_slice(&[255, 255, 255]);
                keys.extend_from_slice(&(l as u32).to_le_bytes());
            }
            keys.extend_from_slice(&e.1);
            off
        });
    }
    let keyend = keys.len();
    let slots_at = 64;
    let keys_at = slots_at + nslots * 12;
    let size = (keys_at + keyend.max(PAGE)).div_ceil(PAGE) * PAGE;
    let key_size = size - keys_at;
    // rpm's rebuild: the smallest power of two from 64 KiB above the key space plus headroom;
    // the hash bits above it tag each slot.
    let mut x: u32 = 0x1_0000;
    while x != 0 && (x as usize) < key_size + 8192 {
        x <<= 1;
    }
    let xmask = if x == 0 { 0 } else { !(x - 1) };
    let mut b = vec![0u8; size];
    b[0..4].copy_from_slice(b"RpmI");
    put(&mut b, 8, 1);
    put(&mut b, 12, nslots as u32);
    put(&mut b, 16, entries.len() as u32);
    put(&mut b, 24, xmask);
    put(&mut b, 28, keyend as u32);
    b[keys_at..keys_at + keyend].copy_from_slice(&keys);
    let hmask = nslots - 1;
    for e in entries {
        let keyh = hash(&e.1);
        let (mut h, mut step) = (keyh as usize & hmask, 7);
        while get(&b, slots_at + 8 * h) != 0 {
            h = (h + step) & hmask;
            step += 1;
        }
        let (data, ovl) = encode(e.2, e.3);
        put(&mut b, slots_at + 8 * h, offsets[&e.1] | (keyh & xmask));
        put(&mut b, slots_at + 8 * h + 4, data);
        if ovl != 0 {
            put(&mut b, slots_at + nslots * 8 + 4 * h, ovl);
        }
    }
    b
}

/// rpm's packing of `(package index, entry index)` into a data word and an overflow word.
fn encode(pkg: u32, dat: u32) -> (u32, u32) {
    if pkg < 0x10_0000 && dat < 0x400 {
        (pkg | dat << 20, 0)
    } else if pkg < 0x100_0000 && dat < 0x40 {
        (pkg | dat << 24 | 0x4000_0000, 0)
    } else {
        (dat | 0x8000_0000, pkg)
    }
}

/// rpm's MurmurHash2 variant over a key.
fn hash(s: &[u8]) -> u32 {
    let m = 0x5bd1_e995u32;
    let mut h = (s.len() as u32).wrapping_mul(m);
    let whole = s.len() / 4 * 4;
    for w in s[..whole].chunks(4) {
        h = h.wrapping_add(get(w, 0)).wrapping_mul(m);
        h ^= h >> 16;
    }
    let tail = &s[whole..];
    if !tail.is_empty() {
        let mut t = 0u32;
        for (i, &c) in tail.iter().enumerate() {
            t |= u32::from(c) << (8 * i);
        }
        h = h.wrapping_add(t).wrapping_mul(m);
        h ^= h >> 16;
    }
    h = h.wrapping_mul(m);
    h ^= h >> 10;
    h = h.wrapping_mul(m);
    h ^ (h >> 17)
}
