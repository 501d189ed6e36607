//! Loading a profile and its includes, each file once.
//!
//! Files are known by identity (device and inode of the opened file), so one file reached by
//! several paths, or included many times, is opened, read and parsed once, and a cycle is a
//! file met again on its own include chain (never two files that share a `name`). Everything a
//! profile and its includes may cost is bounded before it is spent: bytes read (per file and
//! in all), include entries, include depth, requirements, and — in [`super::prescan`] —
//! nesting depth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::file::{self, FileId};
use super::{BUILTIN, Profile, ProfileError, Requirement, names, yaml};

/// The largest profile file accepted; real ones are a few kilobytes.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// The most bytes a profile and all its includes may hold together.
pub const MAX_TOTAL_BYTES: u64 = 4 << 20;

/// The most include entries a profile and all its includes may list together (each entry
/// counts, also one naming a file already loaded).
pub const MAX_INCLUDES: usize = 1024;

/// The longest include chain (a includes b includes c ...).
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// The most requirements one expanded profile may hold; real ones hold a few dozen.
pub const MAX_REQUIREMENTS: usize = 1024;

/// What a file or built-in is, for telling whether it was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Builtin(&'static str),
    File(FileId),
}

/// One load of a profile with its includes; remembers every file it expanded.
#[derive(Default)]
pub(super) struct Loader {
    /// Expanded profiles, by identity.
    done: HashMap<Key, Rc<Profile>>,
    /// Resolved include paths already opened, so naming one again opens nothing.
    paths: HashMap<PathBuf, Key>,
    /// The include chain being loaded: each file's identity and its name for messages (the
    /// canonical path, or `builtin:NAME`).
    chain: Vec<(Key, String)>,
    bytes: u64,
    includes: usize,
    /// How many texts were parsed (each file once).
    pub(super) parsed: usize,
}

impl Loader {
    /// Loads `spec`, a built-in name or a file path, with its includes expanded.
    pub(super) fn load(&mut self, spec: &str) -> Result<Profile, ProfileError> {
        let p = self.load_inner(spec, None)?;
        Ok(Rc::unwrap_or_clone(p))
    }

    fn load_inner(&mut self, spec: &str, base: Option<&Path>) -> Result<Rc<Profile>, ProfileError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
            let key = Key::Builtin(name);
            return self.expand(key, format!("builtin:{name}"), None, |_| {
                Ok((
                    text.to_string(),
                    "builtin".to_string(),
                    format!("<builtin profile {name}>"),
                ))
            });
        }
        let path = match base {
            Some(dir) if !Path::new(spec).is_absolute() => dir.join(spec),
            _ => PathBuf::from(spec),
        };
        let known = self.paths.get(&path).copied();
        // A profile named on the command line is the user's own file, outside any host root.
        #[allow(clippy::disallowed_methods)]
        let exists = || path.exists();
        if known.is_none()
            && !exists()
            && !spec.contains('/')
            && !spec.ends_with(".yaml")
            && !spec.ends_with(".yml")
        {
            return Err(ProfileError::NotFound {
                name: spec.to_string(),
            });
        }
        let read_error = |source| ProfileError::Read {
            path: path.clone(),
            source,
        };
        let (key, label, opened) = match known {
            Some(key) => {
                let label = self
                    .label_of(key)
                    .unwrap_or_else(|| path.display().to_string());
                (key, label, None)
            }
            None => {
                let opened = file::open(&path, MAX_PROFILE_BYTES).map_err(read_error)?;
                let key = Key::File(opened.id);
                self.paths.insert(path.clone(), key);
                (key, opened.canonical.display().to_string(), Some(opened))
            }
        };
        let dir = path.parent().map(Path::to_path_buf);
        let shown = path.display().to_string();
        self.expand(key, label, dir, |this| {
            let opened = match opened {
                Some(o) => o,
                None => file::open(&path, MAX_PROFILE_BYTES).map_err(read_error)?,
            };
            if this.bytes + opened.size > MAX_TOTAL_BYTES {
                return Err(ProfileError::InvalidNoLocation {
                    file: shown.clone(),
                    message: format!(
                        "the profile and its includes hold more than {MAX_TOTAL_BYTES} bytes \
                         in all"
                    ),
                });
            }
            let text = opened.read(&path, MAX_PROFILE_BYTES).map_err(read_error)?;
            Ok((text, shown.clone(), shown))
        })
    }

    /// Returns the message name of a file already met.
    fn label_of(&self, key: Key) -> Option<String> {
        self.chain
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, l)| l.clone())
    }

    /// Expands one profile unless it is already expanded (then shares it) or on the current
    /// include chain (then it is a cycle). `read` returns its text, its `source` and the file
    /// name its errors carry.
    fn expand(
        &mut self,
        key: Key,
        label: String,
        dir: Option<PathBuf>,
        read: impl FnOnce(&mut Self) -> Result<(String, String, String), ProfileError>,
    ) -> Result<Rc<Profile>, ProfileError> {
        if let Some(at) = self.chain.iter().position(|(k, _)| *k == key) {
            let mut names: Vec<&str> = self.chain[at..].iter().map(|(_, l)| l.as_str()).collect();
            names.push(&label);
            return Err(ProfileError::IncludeCycle {
                chain: names.join(" -> "),
            });
        }
        if let Some(p) = self.done.get(&key) {
            return Ok(Rc::clone(p));
        }
        let (text, source, file) = read(self)?;
        self.bytes += text.len() as u64;
        self.parsed += 1;
        let mut raw = yaml::parse(&text, &file)?;
        drop(text);
        resolve_sources(&mut raw, &file)?;
        let condition_type = raw
            .condition
            .clone()
            .unwrap_or_else(|| names::derived_condition_type(&raw.name));
        names::check_condition_type(&condition_type).map_err(|message| {
            ProfileError::InvalidNoLocation {
                file: file.clone(),
                message,
            }
        })?;
        let limit = |message: String| ProfileError::InvalidNoLocation {
            file: file.clone(),
            message,
        };
        if !raw.include.is_empty() && self.chain.len() >= MAX_INCLUDE_DEPTH {
            return Err(limit(format!(
                "includes nest deeper than {MAX_INCLUDE_DEPTH} files"
            )));
        }
        self.chain.push((key, label));
        let mut merged = Merged::default();
        let mut builtins = std::collections::BTreeSet::new();
        if let Key::Builtin(name) = key {
            builtins.insert(name.to_string());
        }
        for inc in &raw.include {
            self.includes += 1;
            if self.includes > MAX_INCLUDES {
                return Err(limit(format!(
                    "the profile and its includes list more than {MAX_INCLUDES} includes in all"
                )));
            }
            let included = self.load_inner(inc, dir.as_deref())?;
            builtins.extend(included.builtins.iter().cloned());
            for r in &included.requirements {
                merged.add(r.clone());
            }
            if merged.list.len() > MAX_REQUIREMENTS {
                break;
            }
        }
        self.chain.pop();
        for r in raw.requirements.0 {
            merged.add(r);
        }
        if merged.list.len() > MAX_REQUIREMENTS {
            return Err(limit(format!(
                "the profile and its includes hold more than {MAX_REQUIREMENTS} requirements"
            )));
        }
        let p = Rc::new(Profile {
            name: raw.name,
            description: raw.description,
            source,
            condition: raw.condition,
            includes: raw.include,
            sources: super::sources::distinct(&merged.list),
            requirements: merged.list,
            builtins,
        });
        self.done.insert(key, Rc::clone(&p));
        Ok(p)
    }
}

/// Checks the file's own `sources:` map and expands every source key of its requirements
/// (`sources.rs`); a mistake names the file.
fn resolve_sources(raw: &mut yaml::RawProfile, file: &str) -> Result<(), ProfileError> {
    super::sources::check_map(&raw.sources)
        .and_then(|()| super::sources::resolve(&mut raw.requirements.0, &raw.sources))
        .map_err(|message| ProfileError::InvalidNoLocation {
            file: file.to_string(),
            message,
        })
}

/// Requirements in order, where a later one with the same id replaces the earlier one in its
/// place (the including profile's own, to change a level for example).
#[derive(Default)]
struct Merged {
    list: Vec<Requirement>,
    index: HashMap<String, usize>,
}

impl Merged {
    fn add(&mut self, r: Requirement) {
        match self.index.get(&r.id) {
            Some(&i) => self.list[i] = r,
            None => {
                self.index.insert(r.id.clone(), self.list.len());
                self.list.push(r);
            }
        }
    }
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn loader_load(path: &Path) -> (Result<Profile, ProfileError>, usize) {
        let mut l = Loader::default();
        let r = l.load(path.to_str().unwrap());
        (r, l.parsed)
    }

    /// Writes files f0 .. f{n-1}, each including the next `times` times, the last one with one
    /// requirement.
    fn fan_out(dir: &Path, n: usize, times: usize) {
        for i in 0..n {
            let text = if i + 1 < n {
                let inc = vec![format!("f{}.yaml", i + 1); times].join(", ");
                format!("name: f{i}\ninclude: [{inc}]\n")
            } else {
                format!("name: f{i}\nrequirements:\n  - executable: x\n")
            };
            fs::write(dir.join(format!("f{i}.yaml")), text).unwrap();
        }
    }

    #[test]
    fn an_include_fan_out_parses_each_file_once() {
        // 5 files each including the next 200 times: 200^4 = 1.6 billion expansions before.
        let dir = tempfile::tempdir().unwrap();
        fan_out(dir.path(), 5, 200);
        let (p, parsed) = loader_load(&dir.path().join("f0.yaml"));
        let p = p.unwrap();
        assert_eq!(parsed, 5);
        assert_eq!(p.requirements.len(), 1);
        assert_eq!(p.requirements[0].id, "exe.x");
    }

    #[test]
    fn one_file_reached_by_several_paths_is_parsed_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(
            dir.path().join("b.yaml"),
            "name: b\nrequirements: [{nfs_client: {}}]\n",
        )
        .unwrap();
        symlink("b.yaml", dir.path().join("link.yaml")).unwrap();
        fs::write(
            dir.path().join("a.yaml"),
            "name: a\ninclude: [b.yaml, ./b.yaml, link.yaml, sub/../b.yaml, kernel, kernel]\n",
        )
        .unwrap();
        let (p, parsed) = loader_load(&dir.path().join("a.yaml"));
        let p = p.unwrap();
        assert_eq!(parsed, 3, "a, b and the built-in kernel, once each");
        assert!(p.requirements.iter().any(|r| r.id == "nfs.client"));
    }

    #[test]
    fn two_files_sharing_a_name_are_not_a_cycle() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "name: same\ninclude: [b.yaml]\n").unwrap();
        fs::write(
            dir.path().join("b.yaml"),
            "name: same\nrequirements: [{nfs_client: {}}]\n",
        )
        .unwrap();
        let p = super::super::load(dir.path().join("a.yaml").to_str().unwrap()).unwrap();
        assert_eq!(p.name, "same");
        assert_eq!(p.requirements.len(), 1);
    }

    #[test]
    fn a_cycle_by_file_names_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let d = fs::canonicalize(dir.path()).unwrap();
        fs::write(d.join("a.yaml"), "name: a\ninclude: [b.yaml]\n").unwrap();
        // b reaches a again through another spelling: still the same file.
        fs::write(d.join("b.yaml"), "name: b\ninclude: [x/../a.yaml]\n").unwrap();
        fs::create_dir(d.join("x")).unwrap();
        let e = super::super::load(d.join("a.yaml").to_str().unwrap()).unwrap_err();
        let (a, b) = (d.join("a.yaml"), d.join("b.yaml"));
        match &e {
            ProfileError::IncludeCycle { chain } => assert_eq!(
                chain,
                &format!("{} -> {} -> {}", a.display(), b.display(), a.display())
            ),
            _ => panic!("{e}"),
        }
        fs::write(d.join("self.yaml"), "name: s\ninclude: [self.yaml]\n").unwrap();
        let e = super::super::load(d.join("self.yaml").to_str().unwrap()).unwrap_err();
        assert!(matches!(e, ProfileError::IncludeCycle { .. }), "{e}");
    }

    #[test]
    fn the_total_size_of_a_profile_and_its_includes_is_bounded() {
        // Five files of 900 KB: each under the per-file limit, 4.5 MB together.
        let dir = tempfile::tempdir().unwrap();
        let filler = "x".repeat(900 << 10);
        for i in 0..5 {
            let inc = if i == 0 {
                "[f1.yaml, f2.yaml, f3.yaml, f4.yaml]"
            } else {
                "[]"
            };
            fs::write(
                dir.path().join(format!("f{i}.yaml")),
                format!("name: f{i}\ninclude: {inc}\ndescription: {filler}\n"),
            )
            .unwrap();
        }
        let (e, parsed) = loader_load(&dir.path().join("f0.yaml"));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("f4.yaml") && e.contains("bytes in all"), "{e}");
        assert_eq!(parsed, 4, "the fifth file is refused before it is read");
    }

    #[test]
    fn include_entries_and_depth_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.yaml"), "name: b\n").unwrap();
        let inc = vec!["b.yaml"; MAX_INCLUDES + 1].join(", ");
        fs::write(
            dir.path().join("a.yaml"),
            format!("name: a\ninclude: [{inc}]\n"),
        )
        .unwrap();
        let (e, _) = loader_load(&dir.path().join("a.yaml"));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("more than 1024 includes"), "{e}");
        for i in 0..=MAX_INCLUDE_DEPTH + 1 {
            fs::write(
                dir.path().join(format!("c{i}.yaml")),
                format!("name: c{i}\ninclude: [c{}.yaml]\n", i + 1),
            )
            .unwrap();
        }
        let (e, parsed) = loader_load(&dir.path().join("c0.yaml"));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("deeper than 16 files"), "{e}");
        assert_eq!(parsed, MAX_INCLUDE_DEPTH + 1);
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_opening_them() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.yaml");
        let dev = dir.path().join("null.yaml");
        hostready_testkit::fakehost::mknod(&fifo, rustix::fs::FileType::Fifo, 0, 0);
        // /dev/null's numbers (1, 3): harmless if it ever were opened.
        hostready_testkit::fakehost::mknod(&dev, rustix::fs::FileType::CharacterDevice, 1, 3);
        for (path, what) in [
            (&fifo, "is a FIFO"),
            (&dev, "is a character device"),
            (&dir.path().to_path_buf(), "is a directory"),
        ] {
            let e = super::super::load(path.to_str().unwrap()).unwrap_err();
            let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(
                text.contains(&path.display().to_string()) && text.contains(what),
                "{text}"
            );
        }
    }

    #[test]
    fn a_path_flipping_between_a_file_and_a_fifo_never_hangs_the_load() {
        // The old loader stat'ed the path, then opened it blocking: a FIFO renamed into place
        // in between blocked it forever. A thread flips the path while loads run; every load
        // must end, with the profile or a clear error.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let target = d.join("p.yaml");
        fs::write(&target, "name: p\n").unwrap();
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        const FLIPS: u64 = 5_000;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flips = std::sync::Arc::new(AtomicU64::new(0));
        let flipper = {
            let (d, stop, flips) = (d.clone(), stop.clone(), flips.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < FLIPS {
                    let (file, fifo) = (d.join(format!("f{i}")), d.join(format!("q{i}")));
                    fs::write(&file, "name: p\n").unwrap();
                    hostready_testkit::fakehost::mknod(&fifo, rustix::fs::FileType::Fifo, 0, 0);
                    fs::rename(&fifo, d.join("p.yaml")).unwrap();
                    fs::rename(&file, d.join("p.yaml")).unwrap();
                    i += 1;
                    flips.store(i, Ordering::Relaxed);
                }
            })
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let loads = {
            let (target, flips) = (target.clone(), flips.clone());
            std::thread::spawn(move || {
                let (mut ok, mut refused) = (0u64, 0u64);
                // Load for as long as the path flips.
                while flips.load(Ordering::Relaxed) < FLIPS {
                    match super::super::load(target.to_str().unwrap()) {
                        Ok(p) => {
                            assert_eq!(p.name, "p");
                            ok += 1
                        }
                        Err(e) => {
                            let text = format!("{e:#?}");
                            assert!(text.contains("p.yaml"), "{text}");
                            refused += 1
                        }
                    }
                }
                tx.send((ok, refused)).unwrap();
            })
        };
        // A hang detector, not a speed assertion: the loads take about a second.
        let got = rx.recv_timeout(std::time::Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        if got.is_err() {
            // Unblock the hung open so the process can exit, then fail.
            let _ = fs::OpenOptions::new().write(true).open(&target);
            panic!("a profile load hung on a FIFO");
        }
        flipper.join().unwrap();
        loads.join().unwrap();
        let (ok, refused) = got.unwrap();
        // Both outcomes happened: the loads really raced the flips.
        assert!(ok > 0 && refused > 0, "{ok} loaded, {refused} refused");
    }
}
