//! Builds (or finds in its cache) a large rpm database for `bench/pkg-scale.sh`:
//! `make-scale-rpmdb CACHE_DIR bdb|ndb MB FIXTURES_DIR` prints the root, the database size,
//! the package count, and one package's name and own file, tab-separated.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, cache, format, mb, fixtures] = args.as_slice() else {
        eprintln!("usage: make-scale-rpmdb CACHE_DIR bdb|ndb MB FIXTURES_DIR");
        std::process::exit(2);
    };
    let format = match format.as_str() {
        "bdb" => hostready_testkit::rpmdb::Format::Bdb,
        "ndb" => hostready_testkit::rpmdb::Format::Ndb,
        other => {
            eprintln!("unknown format {other}: bdb or ndb");
            std::process::exit(2);
        }
    };
    let Ok(mb) = mb.parse() else {
        eprintln!("MB must be a number");
        std::process::exit(2);
    };
    let g = hostready_testkit::rpmdb::generate(
        std::path::Path::new(cache),
        format,
        mb,
        std::path::Path::new(fixtures),
    );
    // A package from the middle of the database, with a file of its own.
    let mid = g.packages[g.packages.len() / 2..]
        .iter()
        .find(|p| p.own_file.is_some())
        .expect("a package with its own file");
    println!(
        "{}\t{}\t{}\t{}\t{}",
        g.root.display(),
        g.db_bytes,
        g.packages.len(),
        mid.name,
        mid.own_file.as_deref().unwrap_or_default()
    );
}
