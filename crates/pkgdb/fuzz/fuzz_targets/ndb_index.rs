//! NDB `Index.db` lookups (container slots, index header, hash probes, keys) over a byte
//! slice. The heap may never grow past a small multiple of the input plus one container page
//! (at most 64 KiB, allocated before it is read): every offset and count is checked against the
//! file before it is followed, and the probe loop stops after `nslots` slots.
#![no_main]

// The kit's counting allocator, shared by every memory-bound target and test.
#[path = "../../../testkit/src/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the tag, the next up to 16 bytes are the key, the rest the file.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (key, index) = rest.split_at(rest.len().min(usize::from(pick & 15)));
    let tag = [1000, 1047, 1117][usize::from(pick >> 4) % 3];
    counting_alloc::within(data.len(), 64, 1 << 20, || {
        let _ = hostready_pkgdb::lookup_ndb_index(index, 1, tag, key);
    });
});
