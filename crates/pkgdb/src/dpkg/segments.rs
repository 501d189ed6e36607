//! Where in `status` a package's stanza may be, learnt while the whole file is checked, so an
//! owner lookup can check `status` at the same time as it searches the file lists and then
//! parse again only the parts that may hold the owners it found.
//!
//! The file is cut into [`SEGMENTS`] runs of whole stanzas by their start offset (run `k`
//! holds the stanzas starting in the `k`-th [`SEGMENTS`]-th of the file's size), and each run
//! keeps a Bloom filter of its stanzas' package names. A filter never misses a name it was
//! given, so re-reading the runs whose filter may hold a name finds every stanza of that name;
//! a false positive only costs reading one run more. Nothing needs to be kept per stanza,
//! which is what keeps the memory fixed: [`SEGMENTS`] × ([`BITS`] / 8 + 8) bytes, 129 KiB,
//! whatever the size of the file. On 51 MB of status (58,900 stanzas, 460 per run) a name
//! falsely matches 0.4 % of the runs.
//!
//! Written by hand: it is a few lines, and every run's filter must use one hash, so that a
//! name's bits are computed once and tested against all of them.

/// Runs of stanzas the file is cut into.
pub(super) const SEGMENTS: usize = 128;

/// Bits in each run's filter.
const BITS: usize = 8192;

const WORDS: usize = BITS / 64;

/// Bits set per name.
const PROBES: u32 = 3;

/// What one check of `status` learnt: where each run starts, and its filter.
pub(super) struct Segments {
    size: u64,
    /// The offset of the first stanza of each run, if any starts in it.
    starts: Vec<Option<u64>>,
    bits: Vec<u64>,
}

impl Segments {
    /// An empty index for a file of `size` bytes (its size when opened; a stanza that starts
    /// beyond it, in a file grown since, belongs to the last run).
    pub fn new(size: u64) -> Segments {
        Segments {
            size: size.max(1),
            starts: vec![None; SEGMENTS],
            bits: vec![0; SEGMENTS * WORDS],
        }
    }

    /// Notes the stanza of `name` that starts at `offset` (offsets arrive in file order).
    pub fn add(&mut self, offset: u64, name: &str) {
        let k = self.segment(offset);
        self.starts[k].get_or_insert(offset);
        let words = &mut self.bits[k * WORDS..(k + 1) * WORDS];
        for bit in probes(name) {
            words[bit / 64] |= 1 << (bit % 64);
        }
    }

    /// Returns the byte ranges of the file (start, end; `u64::MAX` for "to the end"), in file
    /// order and merged where adjacent, whose runs may hold a stanza of one of `names`. Each
    /// begins at a stanza's first line and ends where the next run's first stanza begins.
    pub fn ranges<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<(u64, u64)> {
        let probes: Vec<[usize; PROBES as usize]> = names.into_iter().map(probes).collect();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for k in 0..SEGMENTS {
            let Some(start) = self.starts[k] else {
                continue;
            };
            let words = &self.bits[k * WORDS..(k + 1) * WORDS];
            let maybe = probes.iter().any(|p| {
                p.iter()
                    .all(|&bit| words[bit / 64] & (1 << (bit % 64)) != 0)
            });
            if !maybe {
                continue;
            }
            let end = self.starts[k + 1..]
                .iter()
                .find_map(|s| *s)
                .unwrap_or(u64::MAX);
            match out.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => out.push((start, end)),
            }
        }
        out
    }

    fn segment(&self, offset: u64) -> usize {
        let k = u128::from(offset) * SEGMENTS as u128 / u128::from(self.size);
        usize::try_from(k).map_or(SEGMENTS - 1, |k| k.min(SEGMENTS - 1))
    }
}

/// The filter bits of a name: FNV-1a, split in two halves for double hashing.
fn probes(name: &str) -> [usize; PROBES as usize] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let (a, b) = (h as u32, ((h >> 32) as u32) | 1);
    std::array::from_fn(|i| (a.wrapping_add((i as u32).wrapping_mul(b)) as usize) % BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_added_name_is_found_in_its_run_and_runs_merge() {
        let mut s = Segments::new(128 * 100);
        // Stanzas at every 50 bytes: two per run.
        for i in 0..256u64 {
            s.add(i * 50, &format!("pkg{i}"));
        }
        for i in 0..256u64 {
            let r = s.ranges([format!("pkg{i}").as_str()]);
            assert!(
                r.iter().any(|&(a, b)| a <= i * 50 && i * 50 < b),
                "pkg{i}: {r:?}"
            );
        }
        // A name in two neighbouring runs gives one range; the last run reaches the end.
        let r = s.ranges(["pkg0", "pkg2"]);
        assert_eq!(r[0], (0, 200), "{r:?}");
        assert_eq!(s.ranges(["pkg255"]).last(), Some(&(12_700, u64::MAX)));
        // Mostly nothing for names never added.
        let misses = (0..1000)
            .filter(|i| !s.ranges([format!("other{i}").as_str()]).is_empty())
            .count();
        assert!(misses < 20, "{misses}");
    }

    #[test]
    fn offsets_past_the_size_and_empty_files_stay_in_range() {
        let mut s = Segments::new(0);
        s.add(0, "a");
        s.add(10, "b");
        assert_eq!(s.ranges(["a"]), [(0, 10)]);
        assert_eq!(s.ranges(["b"]), [(10, u64::MAX)]);
        // A stanza past the size when opened (the file grew) is in the last run.
        let mut s = Segments::new(1000);
        s.add(990, "a");
        s.add(5000, "b");
        assert_eq!(s.ranges(["a"]), [(990, 5000)]);
        assert_eq!(s.ranges(["b"]), [(5000, u64::MAX)]);
        assert!(s.ranges(Vec::<&str>::new()).is_empty());
    }
}
