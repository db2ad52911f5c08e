//! The build folder: which files are part of the site, their object keys, and their sha256.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

/// Large enough that a syscall per chunk costs nothing next to hashing it, small enough that
/// one buffer per core stays cheap.
const CHUNK: usize = 256 * 1024;
const MAX_KEY_LEN: usize = 1024;
/// Files above this size are uploaded in parts, several at once.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// 8 MiB parts: S3's minimum is 5 MiB; 10,000 parts of 8 MiB cover files up to 78 GiB.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Holds the tool's manifest and lock under the prefix, so no site file may live there.
const RESERVED_DIR: &str = ".cdn-deploy";
const WELL_KNOWN: &str = ".well-known";

#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    pub root: PathBuf,
    pub prefix: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// An object key shared by the scanned file and the write that uploads it: a first deploy of
/// 100,000 files holds each once.
pub type Key = Arc<str>;

/// The sha256 of each upload part of a large file (a thin pointer: most files have none).
pub type PartSums = Arc<Vec<[u8; 32]>>;

/// Where a file of the build folder lies: the folder, and where the path relative to it starts
/// in the object key. One is shared by every file of a scan: no path is stored per file, since
/// a site may have 100,000.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InBuild(Arc<BuildDir>);

#[derive(Debug, PartialEq, Eq)]
struct BuildDir {
    root: PathBuf,
    rel_at: usize,
}

impl InBuild {
    /// The files of `root` whose keys start with a prefix of `rel_at` bytes.
    pub fn new(root: &Path, rel_at: usize) -> InBuild {
        InBuild(Arc::new(BuildDir {
            root: root.to_path_buf(),
            rel_at,
        }))
    }

    pub fn root(&self) -> &Path {
        &self.0.root
    }

    /// The path relative to the build folder, with '/', of the file with this key.
    pub fn rel<'k>(&self, key: &'k str) -> &'k str {
        key.get(self.0.rel_at..).unwrap_or_default()
    }

    /// The file with this key.
    pub fn path(&self, key: &str) -> PathBuf {
        self.0.root.join(self.rel(key))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Shared with the write that uploads it.
    pub at: InBuild,
    /// The object key: the prefix, then the path relative to the build folder.
    pub key: Key,
    pub size: u64,
    pub sha256: [u8; 32],
    /// The sha256 of each upload part of a file over [`MULTIPART_THRESHOLD`], taken in the same
    /// read as the whole file's, so a large file is read once to hash and once to upload.
    pub parts: Option<PartSums>,
}

impl LocalFile {
    /// A file of the build folder `at`, not hashed yet.
    pub fn new(at: &InBuild, prefix: &str, rel: &str, size: u64) -> LocalFile {
        LocalFile {
            at: at.clone(),
            key: format!("{prefix}{rel}").into(),
            size,
            sha256: [0; 32],
            parts: None,
        }
    }

    /// The path relative to the build folder, with '/'.
    pub fn rel(&self) -> &str {
        self.at.rel(&self.key)
    }

    pub fn path(&self) -> PathBuf {
        self.at.path(&self.key)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    Dotfile,
    Excluded,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::Dotfile => "a dotfile: pass --include GLOB to deploy it",
            SkipReason::Excluded => "excluded by --exclude",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub rel: String,
    pub reason: SkipReason,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<LocalFile>,
    pub skipped: Vec<Skipped>,
}

/// Progress sink; called from many threads.
pub trait ScanProgress: Sync {
    fn walked(&self, files: usize, bytes: u64);
    fn hashed(&self, bytes: u64);
}

#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ScanProgress for NoProgress {
    fn walked(&self, _files: usize, _bytes: u64) {}
    fn hashed(&self, _bytes: u64) {}
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("build folder \"{}\" does not exist: run your build first, or pass the folder to deploy", .0.display())]
    MissingDir(PathBuf),
    #[error("build folder \"{}\" is not a directory: pass the folder that holds the built site", .0.display())]
    NotADir(PathBuf),
    #[error("build folder \"{}\" has no file to deploy after filtering: refusing to empty the site; check the folder and your --include/--exclude globs", .0.display())]
    EmptyDir(PathBuf),
    #[error("file name \"{}\" is not valid UTF-8, which S3 keys must be: rename it, or leave it out with --exclude GLOB", .0.display())]
    NonUtf8Name(PathBuf),
    #[error("symlink \"{}\" points outside the build folder, to \"{}\": copy the target into the build folder or remove the link", .link.display(), .target.display())]
    SymlinkOutside { link: PathBuf, target: PathBuf },
    #[error("symlink loop at \"{}\": remove the link that points back to one of its parent folders", .0.display())]
    SymlinkLoop(PathBuf),
    #[error("cannot read \"{}\": {source}: check that it is readable and that no build is still writing to it", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid glob \"{glob}\": {}: fix the --include or --exclude pattern", .source.kind())]
    BadGlob {
        glob: String,
        source: globset::Error,
    },
    #[error("refusing to deploy files that look like secrets: {}: remove them from the build output, or pass --include GLOB if they are really meant to be public, or --exclude GLOB to leave them out", .0.join(", "))]
    Secrets(Vec<String>),
    #[error("\"{0}\" is inside {RESERVED_DIR}/, which is reserved for the deploy manifest and lock: rename it, or leave it out with --exclude GLOB")]
    ReservedKey(String),
    #[error("object key \"{key}\" is {len} bytes, over the S3 limit of {MAX_KEY_LEN}: shorten the path or the --prefix")]
    KeyTooLong { key: String, len: usize },
}

impl ScanError {
    pub fn is_safety_refusal(&self) -> bool {
        matches!(self, Self::EmptyDir(_) | Self::Secrets(_))
    }

    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}

enum Verdict {
    Deploy,
    Skip(SkipReason),
    Secret,
}

pub struct Filter {
    include: GlobSet,
    exclude: GlobSet,
    has_include: bool,
}

impl Filter {
    fn new(opts: &ScanOptions) -> Result<Self, ScanError> {
        Ok(Self {
            include: glob_set(&opts.include)?,
            exclude: glob_set(&opts.exclude)?,
            has_include: !opts.include.is_empty(),
        })
    }

    fn verdict(&self, rel: &str) -> Verdict {
        if self.include.is_match(rel) {
            return Verdict::Deploy;
        }
        if self.exclude.is_match(rel) {
            return Verdict::Skip(SkipReason::Excluded);
        }
        let well_known = in_well_known(rel);
        let dot = rel
            .split('/')
            .skip(usize::from(well_known))
            .any(|c| c.starts_with('.'));
        // A secret is refused even when it is a dotfile (`.env`, `.npmrc`): a build folder that
        // holds one was probably assembled by copying too much, and silence would hide that.
        if looks_secret(rel) {
            Verdict::Secret
        } else if dot {
            Verdict::Skip(SkipReason::Dotfile)
        } else {
            Verdict::Deploy
        }
    }

    /// What to do with a folder: walk it, skip it whole (dot-folders such as `.cache`; an
    /// include glob could pull any file out of them, so then every file is looked at), or
    /// refuse it (`.git/`, `.aws/`, `.ssh/`, unless excluded).
    fn folder(&self, rel: &str) -> Folder {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if !name.starts_with('.') || rel == WELL_KNOWN || in_well_known(rel) {
            return Folder::Walk;
        }
        if self.exclude.is_match(rel) && !self.include.is_match(rel) {
            Folder::Skip(SkipReason::Excluded)
        } else if self.has_include {
            // Every file is judged on its own: the include globs may name some of them.
            Folder::Walk
        } else if matches!(name, ".git" | ".aws" | ".ssh") {
            Folder::Secret
        } else {
            Folder::Skip(SkipReason::Dotfile)
        }
    }

    /// A matcher for `--exclude` globs alone, over paths relative to the build folder: what the
    /// plan asks of a key the manifest knows and the build no longer has.
    pub fn excluder(globs: &[String]) -> Result<Excluder, ScanError> {
        let set = glob_set(globs)?;
        Ok(Box::new(move |rel: &str| set.is_match(rel)))
    }
}

/// Whether a path relative to the build folder is left out by `--exclude`.
pub type Excluder = Box<dyn Fn(&str) -> bool + Send + Sync>;

enum Folder {
    Walk,
    Skip(SkipReason),
    Secret,
}

fn in_well_known(rel: &str) -> bool {
    rel.strip_prefix(WELL_KNOWN)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// A glob over paths relative to the build folder, as every option and rule of the tool reads
/// them: `*` stays within a folder, `**` crosses folders, and a bare name pattern such as
/// `*.map` means "in any folder", as in .gitignore.
pub(crate) fn site_globs(glob: &str) -> Result<Vec<Glob>, globset::Error> {
    let anywhere = (!glob.contains('/')).then(|| format!("**/{glob}"));
    std::iter::once(glob)
        .chain(anywhere.as_deref())
        .map(|pattern| GlobBuilder::new(pattern).literal_separator(true).build())
        .collect()
}

fn glob_set(globs: &[String]) -> Result<GlobSet, ScanError> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        for built in site_globs(glob).map_err(|source| bad_glob(glob, source))? {
            set.add(built);
        }
    }
    set.build()
        .map_err(|source| bad_glob(&globs.join(" "), source))
}

fn bad_glob(glob: &str, source: globset::Error) -> ScanError {
    ScanError::BadGlob {
        glob: glob.to_string(),
        source,
    }
}

fn looks_secret(rel: &str) -> bool {
    let lower = rel.to_ascii_lowercase();
    let (dirs, name) = lower.rsplit_once('/').unwrap_or(("", &lower));
    dirs.split('/')
        .any(|d| matches!(d, ".git" | ".aws" | ".ssh"))
        || name == ".env"
        || name.starts_with(".env.")
        || [".pem", ".key", ".p12", ".pfx"]
            .iter()
            .any(|ext| name.ends_with(ext))
        || ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
            .iter()
            .any(|p| name.starts_with(p))
        || matches!(name, ".npmrc" | ".netrc" | ".htpasswd")
}

/// The relative path with '/', and whether every component was UTF-8. Name bytes are kept
/// exactly as the file system returns them, without Unicode normalization: the key must be the
/// name the file really has (macOS may hand back NFD where Linux keeps what was written).
fn relative(root: &Path, path: &Path) -> Result<(String, bool), ScanError> {
    let odd = || io_at(path)(io::Error::other("not a plain path below the build folder"));
    let tail = path.strip_prefix(root).map_err(|_| odd())?;
    let (mut rel, mut utf8) = (String::new(), true);
    for component in tail.components() {
        let Component::Normal(part) = component else {
            return Err(odd());
        };
        if !rel.is_empty() {
            rel.push('/');
        }
        match part.to_str() {
            Some(s) => rel.push_str(s),
            None => {
                utf8 = false;
                rel.push_str(&part.to_string_lossy());
            }
        }
    }
    Ok((rel, utf8))
}

fn walk_error(err: walkdir::Error) -> ScanError {
    let path = err.path().map(Path::to_path_buf).unwrap_or_default();
    if err.loop_ancestor().is_some() {
        return ScanError::SymlinkLoop(path);
    }
    let source = err.into();
    ScanError::Io { path, source }
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> ScanError + '_ {
    move |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn check_inside(canon_root: &Path, link: &Path) -> Result<(), ScanError> {
    let target = link.canonicalize().map_err(io_at(link))?;
    if target.starts_with(canon_root) {
        Ok(())
    } else {
        let link = link.to_path_buf();
        Err(ScanError::SymlinkOutside { link, target })
    }
}

/// Checks that the build folder exists and is a folder: cheap, so a run can say so before it
/// talks to AWS.
pub fn check_root(root: &Path) -> Result<(), ScanError> {
    let meta = std::fs::metadata(root).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ScanError::MissingDir(root.to_path_buf()),
        _ => io_at(root)(e),
    })?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(ScanError::NotADir(root.to_path_buf()))
    }
}

pub fn scan(opts: &ScanOptions, progress: &dyn ScanProgress) -> Result<Scan, ScanError> {
    let root = &opts.root;
    check_root(root)?;
    let canon_root = root.canonicalize().map_err(io_at(root))?;
    let filter = Filter::new(opts)?;
    let (mut files, mut skipped, mut secrets) = (Vec::new(), Vec::new(), Vec::new());
    let at = InBuild::new(root, opts.prefix.len());

    let mut walk = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(walk_error)?;
        let (rel, utf8) = relative(root, entry.path())?;
        let file_type = entry.file_type();
        if file_type.is_dir() {
            match filter.folder(&rel) {
                Folder::Skip(reason) => {
                    walk.skip_current_dir();
                    skipped.push(Skipped {
                        rel: rel + "/",
                        reason,
                    });
                }
                Folder::Secret => {
                    walk.skip_current_dir();
                    secrets.push(rel + "/");
                }
                Folder::Walk if entry.path_is_symlink() => {
                    check_inside(&canon_root, entry.path())?;
                }
                Folder::Walk => {}
            }
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        match filter.verdict(&rel) {
            Verdict::Skip(reason) => skipped.push(Skipped { rel, reason }),
            Verdict::Secret => secrets.push(rel),
            Verdict::Deploy => {
                if !utf8 {
                    return Err(ScanError::NonUtf8Name(entry.into_path()));
                }
                if rel.split('/').next() == Some(RESERVED_DIR) {
                    return Err(ScanError::ReservedKey(rel));
                }
                if entry.path_is_symlink() {
                    check_inside(&canon_root, entry.path())?;
                }
                let size = entry.metadata().map_err(walk_error)?.len();
                let file = LocalFile::new(&at, &opts.prefix, &rel, size);
                if file.key.len() > MAX_KEY_LEN {
                    let len = file.key.len();
                    return Err(ScanError::KeyTooLong {
                        key: file.key.to_string(),
                        len,
                    });
                }
                files.push(file);
            }
        }
    }

    if !secrets.is_empty() {
        secrets.sort_unstable();
        return Err(ScanError::Secrets(secrets));
    }
    if files.is_empty() {
        return Err(ScanError::EmptyDir(root.clone()));
    }
    progress.walked(files.len(), files.iter().map(|f| f.size).sum());
    files.par_iter_mut().try_for_each(|f| {
        let (whole, parts) = hash_listed(&f.path(), f.size, progress)?;
        f.sha256 = whole;
        f.parts = parts.map(Arc::new);
        Ok::<_, ScanError>(())
    })?;
    files.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    skipped.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Scan { files, skipped })
}

/// Gives every file its key under another prefix (the scan ran before the prefix was known:
/// it may come from the distribution's OriginPath).
pub fn rekey(files: &mut [LocalFile], prefix: &str) -> Result<(), ScanError> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    if first.at.0.rel_at == prefix.len() && first.key.starts_with(prefix) {
        // Already there (the usual case; a scan gives every file the same prefix): no new
        // string per file.
        return Ok(());
    }
    let at = InBuild::new(&first.at.0.root, prefix.len());
    for f in files.iter_mut() {
        let key = format!("{prefix}{}", f.rel());
        if key.len() > MAX_KEY_LEN {
            let len = key.len();
            return Err(ScanError::KeyTooLong { key, len });
        }
        f.key = key.into();
        f.at = at.clone();
    }
    Ok(())
}

/// The whole file's sha256, and each part's for a file large enough to go up in parts.
type Hashes = ([u8; 32], Option<Vec<[u8; 32]>>);

/// The size recorded at walk time goes into the manifest and the upload, so a file that changed
/// since must not be paired with a hash of different content.
fn hash_listed(path: &Path, size: u64, progress: &dyn ScanProgress) -> Result<Hashes, ScanError> {
    let io_err = io_at(path);
    let part = (size > MULTIPART_THRESHOLD).then_some(PART_SIZE);
    let (hashes, read) = File::open(path)
        .and_then(|f| hash_open(f, size, part, progress))
        .map_err(&io_err)?;
    if read != size {
        let msg = format!("file changed while scanning ({size} bytes listed, {read} read)");
        return Err(io_err(io::Error::other(msg)));
    }
    Ok(hashes)
}

fn hash_open(
    mut file: File,
    hint: u64,
    part_size: Option<u64>,
    progress: &dyn ScanProgress,
) -> io::Result<(Hashes, u64)> {
    // Most site files are small: sizing the buffer to them avoids zeroing 256 KiB per file.
    let cap = usize::try_from(hint).map_or(CHUNK, |n| n.clamp(1, CHUNK));
    let mut buf = vec![0u8; cap];
    let mut hasher = Sha256::new();
    let mut parts = part_size.map(|_| Vec::new());
    let mut part = Sha256::new();
    let mut in_part = 0u64;
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let (Some(size), Some(list)) = (part_size, parts.as_mut()) {
            let mut chunk = &buf[..n];
            while !chunk.is_empty() {
                let room = usize::try_from(size - in_part).unwrap_or(usize::MAX);
                let take = room.min(chunk.len());
                part.update(&chunk[..take]);
                in_part += take as u64;
                chunk = &chunk[take..];
                if in_part == size {
                    list.push(part.finalize_reset().into());
                    in_part = 0;
                }
            }
        }
        total += n as u64;
        progress.hashed(n as u64);
    }
    if let Some(list) = parts.as_mut() {
        if in_part > 0 || list.is_empty() {
            list.push(part.finalize().into());
        }
    }
    Ok(((hasher.finalize().into(), parts), total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
    use tempfile::TempDir;

    fn put(root: &Path, rel: &str, body: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }

    /// A build folder holding the whitespace-separated files, each containing "x".
    fn tree(rels: &str) -> TempDir {
        let dir = TempDir::new().unwrap();
        rels.split_whitespace()
            .for_each(|rel| put(dir.path(), rel, b"x"));
        dir
    }

    fn run(dir: &Path, tweak: impl FnOnce(&mut ScanOptions)) -> Result<Scan, ScanError> {
        let mut opts = ScanOptions {
            root: dir.into(),
            ..ScanOptions::default()
        };
        tweak(&mut opts);
        scan(&opts, &NoProgress)
    }

    fn rels(scan: &Scan) -> Vec<&str> {
        scan.files.iter().map(LocalFile::rel).collect()
    }

    fn skipped(scan: &Scan, reason: SkipReason) -> Vec<&str> {
        let of_reason = scan.skipped.iter().filter(|s| s.reason == reason);
        of_reason.map(|s| s.rel.as_str()).collect()
    }

    fn words(list: &str) -> Vec<String> {
        list.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn keys_are_prefix_plus_rel_sorted_by_key() {
        let dir = tree("index.html a/b/c.css a-b.js");
        let scan = run(dir.path(), |o| o.prefix = "site/".into()).unwrap();
        let keys: Vec<_> = scan.files.iter().map(|f| &*f.key).collect();
        assert_eq!(keys, ["site/a-b.js", "site/a/b/c.css", "site/index.html"]);
        let css = &scan.files[1];
        assert_eq!((css.rel(), css.size), ("a/b/c.css", 1));
        assert_eq!(css.path(), dir.path().join("a/b/c.css"));
        assert_eq!(css.sha256, <[u8; 32]>::from(Sha256::digest(b"x")));
    }

    #[test]
    fn rekeyed_files_keep_their_paths() {
        let dir = tree("index.html a/b/c.css");
        let mut files = run(dir.path(), |_| {}).unwrap().files;
        let before: Vec<*const u8> = files.iter().map(|f| f.key.as_ptr()).collect();
        rekey(&mut files, "").unwrap();
        let same: Vec<*const u8> = files.iter().map(|f| f.key.as_ptr()).collect();
        assert_eq!(before, same, "the same prefix makes no new keys");

        rekey(&mut files, "live/").unwrap();
        let keys: Vec<_> = files.iter().map(|f| &*f.key).collect();
        assert_eq!(keys, ["live/a/b/c.css", "live/index.html"]);
        assert_eq!(files[0].rel(), "a/b/c.css");
        assert_eq!(files[0].path(), dir.path().join("a/b/c.css"));
        assert_eq!(
            files[1].at.path("live/index.html"),
            dir.path().join("index.html")
        );
    }

    #[test]
    fn non_ascii_and_space_names_keep_their_bytes() {
        let names = ["blog/café/index.html", "my file.txt", "nfd/cafe\u{301}.txt"];
        let dir = tree("");
        names.iter().for_each(|rel| put(dir.path(), rel, b"x"));
        assert_eq!(rels(&run(dir.path(), |_| {}).unwrap()), names);
    }

    #[test]
    fn dotfiles_skipped_but_well_known_kept() {
        let dir = tree(".hidden .cache/x a/.DS_Store .well-known/security.txt .well-known/.x i");
        let scan = run(dir.path(), |_| {}).unwrap();
        assert_eq!(rels(&scan), [".well-known/security.txt", "i"]);
        let want = [".cache/", ".hidden", ".well-known/.x", "a/.DS_Store"];
        assert_eq!(skipped(&scan, SkipReason::Dotfile), want);
    }

    #[test]
    fn secret_dotfiles_and_folders_are_refused_not_skipped() {
        let dir = tree(".git/config .npmrc .env.production index.html");
        let err = run(dir.path(), |_| {}).unwrap_err();
        let want = words(".env.production .git/ .npmrc");
        assert!(
            matches!(&err, ScanError::Secrets(list) if *list == want),
            "{err}"
        );
        // Excluding them is the way to say "not part of the site".
        let scan = run(dir.path(), |o| o.exclude = words(".git .npmrc .env*")).unwrap();
        assert_eq!(rels(&scan), ["index.html"]);
        assert_eq!(
            SkipReason::Dotfile.to_string(),
            "a dotfile: pass --include GLOB to deploy it"
        );
    }

    #[test]
    fn include_overrides_dotfile_exclude_and_secret() {
        let dir = tree(".htaccess tls/server.key a.map .cache/HEAD index.html");
        let scan = run(dir.path(), |o| {
            o.include = words(".htaccess *.key a.map");
            o.exclude = words("*.map");
        });
        let scan = scan.unwrap();
        assert_eq!(
            rels(&scan),
            [".htaccess", "a.map", "index.html", "tls/server.key"]
        );
        // With include globs dot-directories are walked, so their files are listed one by one.
        assert_eq!(skipped(&scan, SkipReason::Dotfile), [".cache/HEAD"]);
    }

    #[test]
    fn exclude_skips_and_star_stays_in_its_folder() {
        let dir = tree("drafts/a/b.html js/a.js js/sub/b.js index.html");
        let scan = run(dir.path(), |o| o.exclude = words("drafts/** js/*.js")).unwrap();
        assert_eq!(rels(&scan), ["index.html", "js/sub/b.js"]);
        let want = ["drafts/a/b.html", "js/a.js"];
        assert_eq!(skipped(&scan, SkipReason::Excluded), want);
    }

    #[test]
    fn glob_without_slash_matches_in_subfolders() {
        let dir = tree("a.map js/deep/b.map js/app.js");
        let scan = run(dir.path(), |o| o.exclude = words("*.map")).unwrap();
        assert_eq!(rels(&scan), ["js/app.js"]);
        assert_eq!(
            skipped(&scan, SkipReason::Excluded),
            ["a.map", "js/deep/b.map"]
        );
    }

    #[test]
    fn bad_glob_is_reported() {
        let dir = tree("index.html");
        let err = run(dir.path(), |o| o.include = words("a[")).unwrap_err();
        assert!(matches!(&err, ScanError::BadGlob { glob, .. } if glob == "a["));
    }

    #[test]
    fn secrets_are_refused_and_all_listed() {
        let secrets = ".well-known/.env .well-known/.git/config cert.pem id_rsa k/s.KEY n/id_ed25519.pub x.p12";
        let dir = tree(&format!("{secrets} index.html .env keyboard.html"));
        let err = run(dir.path(), |_| {}).unwrap_err();
        let want = words(&format!(".env {secrets}"));
        assert!(
            matches!(&err, ScanError::Secrets(list) if *list == want),
            "{err}"
        );
        assert!(err.is_safety_refusal() && !err.is_io());
        let msg = err.to_string();
        assert!(
            msg.contains("--include GLOB") && msg.contains("--exclude GLOB"),
            "{msg}"
        );
    }

    #[test]
    fn reserved_dir_is_refused_when_deployed() {
        let dir = tree(".cdn-deploy/manifest.json index.html");
        assert_eq!(rels(&run(dir.path(), |_| {}).unwrap()), ["index.html"]);
        let err = run(dir.path(), |o| o.include = words(".cdn-deploy/**")).unwrap_err();
        assert!(matches!(&err, ScanError::ReservedKey(r) if r == ".cdn-deploy/manifest.json"));
    }

    #[test]
    fn key_too_long_is_refused() {
        let dir = tree("index.html");
        let err = run(dir.path(), |o| o.prefix = "p/".repeat(510)).unwrap_err();
        assert!(matches!(err, ScanError::KeyTooLong { len: 1030, .. }));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_are_followed() {
        use std::os::unix::fs::symlink;
        let dir = tree("real/a.txt");
        symlink("real/a.txt", dir.path().join("link.txt")).unwrap();
        symlink("real", dir.path().join("linkdir")).unwrap();
        let scan = run(dir.path(), |_| {}).unwrap();
        assert_eq!(rels(&scan), ["link.txt", "linkdir/a.txt", "real/a.txt"]);
        assert!(scan
            .files
            .iter()
            .all(|f| f.sha256 == scan.files[2].sha256 && f.size == 1));
        assert_eq!(scan.files[0].path(), dir.path().join("link.txt"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_outside_are_refused() {
        let outside = tree("secret.txt");
        for (name, target) in [("leak.txt", "secret.txt"), ("leakdir", "")] {
            let dir = tree("index.html");
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(outside.path().join(target), &link).unwrap();
            let err = run(dir.path(), |_| {}).unwrap_err();
            assert!(matches!(&err, ScanError::SymlinkOutside { link: l, .. } if *l == link));
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_refused() {
        let dir = tree("a/index.html");
        let link = dir.path().join("a/up");
        std::os::unix::fs::symlink("..", &link).unwrap();
        let err = run(dir.path(), |_| {}).unwrap_err();
        assert!(matches!(&err, ScanError::SymlinkLoop(p) if *p == link));
    }

    #[cfg(unix)]
    #[test]
    fn sockets_are_skipped_silently() {
        let dir = tree("index.html");
        let _sock = std::os::unix::net::UnixListener::bind(dir.path().join("s.sock")).unwrap();
        let scan = run(dir.path(), |_| {}).unwrap();
        assert_eq!(rels(&scan), ["index.html"]);
        assert!(scan.skipped.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_name_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tree("");
        let path = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"bad\xff.html"));
        if fs::write(&path, b"x").is_err() {
            return; // some file systems (APFS) refuse such names outright
        }
        let err = run(dir.path(), |_| {}).unwrap_err();
        assert!(matches!(&err, ScanError::NonUtf8Name(p) if *p == path));
        assert!(err.to_string().contains("bad\u{fffd}.html"));
    }

    #[test]
    fn empty_or_dotfiles_only_is_refused() {
        let err = run(tree("").path(), |_| {}).unwrap_err();
        assert!(matches!(err, ScanError::EmptyDir(_)) && err.is_safety_refusal());
        let dir = tree(".DS_Store .cache/x");
        assert!(matches!(
            run(dir.path(), |_| {}),
            Err(ScanError::EmptyDir(_))
        ));
    }

    #[test]
    fn missing_dir_and_file_root_are_refused() {
        let dir = tree("file");
        let err = run(&dir.path().join("dist"), |_| {}).unwrap_err();
        assert!(err
            .to_string()
            .contains("dist\" does not exist: run your build first"));
        assert!(matches!(err, ScanError::MissingDir(_)));
        let err = run(&dir.path().join("file"), |_| {}).unwrap_err();
        assert!(matches!(err, ScanError::NotADir(_)));
    }

    #[test]
    fn hash_of_hello_is_known() {
        let dir = tree("");
        put(dir.path(), "hello.txt", b"hello\n");
        let (hash, parts) = hash_listed(&dir.path().join("hello.txt"), 6, &NoProgress).unwrap();
        assert!(parts.is_none(), "small files go up whole");
        let want = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert_eq!(hex::encode(hash), want);
    }

    #[derive(Default)]
    struct Count(AtomicUsize, AtomicU64, AtomicU64);

    impl ScanProgress for Count {
        fn walked(&self, files: usize, bytes: u64) {
            self.0.fetch_add(files, Relaxed);
            self.1.fetch_add(bytes, Relaxed);
        }
        fn hashed(&self, bytes: u64) {
            self.2.fetch_add(bytes, Relaxed);
        }
    }

    #[test]
    fn large_file_hashes_right_and_reports_progress() {
        let dir = tree("small.txt");
        let body: Vec<u8> = (0..(1u32 << 20) + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        put(dir.path(), "big.bin", &body);
        let count = Count::default();
        let opts = ScanOptions {
            root: dir.path().into(),
            ..ScanOptions::default()
        };
        let scan = scan(&opts, &count).unwrap();
        assert_eq!(
            scan.files[0].sha256,
            <[u8; 32]>::from(Sha256::digest(&body))
        );
        let total = body.len() as u64 + 1;
        let counted = [count.1.load(Relaxed), count.2.load(Relaxed)];
        assert_eq!((count.0.load(Relaxed), counted), (2, [total, total]));
    }

    #[test]
    fn part_hashes_cover_the_file_in_part_sized_pieces() {
        let dir = tree("");
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 7) as u8).collect();
        put(dir.path(), "f", &body);
        let file = File::open(dir.path().join("f")).unwrap();
        let ((whole, parts), read) = hash_open(file, 1000, Some(300), &NoProgress).unwrap();
        assert_eq!(read, 1000);
        assert_eq!(whole, <[u8; 32]>::from(Sha256::digest(&body)));
        let want: Vec<[u8; 32]> = body.chunks(300).map(|c| Sha256::digest(c).into()).collect();
        assert_eq!(parts, Some(want));
        let exact = File::open(dir.path().join("f")).unwrap();
        let ((_, parts), _) = hash_open(exact, 1000, Some(500), &NoProgress).unwrap();
        assert_eq!(parts.map(|p| p.len()), Some(2), "no empty trailing part");
    }

    #[test]
    fn size_change_since_walk_is_an_io_error() {
        let dir = tree("a.txt");
        let err = hash_listed(&dir.path().join("a.txt"), 3, &NoProgress).unwrap_err();
        assert!(err.is_io() && err.to_string().contains("file changed while scanning"));
    }
}
