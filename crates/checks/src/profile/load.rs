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
        if !path.exists()
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
        let (key, label, opened) = match self.paths.get(&path) {
            Some(&key) => {
                let label = self.label_of(key).unwrap_or_else(|| path.display().to_string());
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
        let raw = yaml::parse(&text, &file)?;
        drop(text);
        let condition_type = raw
            .condition
            .clone()
            .unwrap_or_else(|| names::derived_condition_type(&raw.name));
        names::check_condition_type(&condition_type)
            .map_err(|message| ProfileError::InvalidNoLocation {
                file: file.clone(),
                message,
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
        for inc in &raw.include {
            self.includes += 1;
            if self.includes > MAX_INCLUDES {
                return Err(limit(format!(
                    "the profile and its includes list more than {MAX_INCLUDES} includes in all"
                )));
            }
            let included = self.load_inner(inc, dir.as_deref())?;
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
            requirements: merged.list,
        });
        self.done.insert(key, Rc::clone(&p));
        Ok(p)
    }
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
