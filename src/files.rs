//! Reading a file a user names (a values file, a profile): a regular file, read whole only when
//! it is below a size limit, so that `/dev/zero`, a FIFO or a runaway file stops at once.

use std::io::Read as _;
use std::path::Path;

/// The largest values file or profile plane reads: 4 MiB. Every value ends up in some object,
/// and the API server takes at most 3 MiB in one request (etcd stores at most 1.5 MiB per
/// object), so a larger file cannot be deployed whole; 4 MiB leaves room for comments and
/// unused keys while bounding the memory and time a mistaken path (a log, an image) can cost.
pub const INPUT_FILE_MAX: u64 = 4 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRefusal {
    /// Nothing is there.
    NotFound,
    /// It could not be opened or read: the system's reason.
    Io(String),
    /// Not a regular file (a FIFO, a device, a socket, a directory): what it is.
    NotRegular(&'static str),
    /// Larger than the limit: its size (or at least this much).
    TooLarge { bytes: u64, limit: u64 },
    /// Not UTF-8 text.
    NotText,
    /// Outside the folder it must be read from (a link out of a bundle, `..`).
    OutsideRoot,
    /// A link to a folder, which a walk does not follow.
    LinkedFolder,
    /// A name that is not UTF-8.
    NameNotUtf8,
    /// A walk went deeper than this.
    TooDeep { max: usize },
    /// A walk met more entries than this.
    TooMany { max: usize },
}

impl std::fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file"),
            Self::Io(why) => f.write_str(why),
            Self::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            Self::TooLarge { bytes, limit } => write!(
                f,
                "it is {} or more, over the limit of {}",
                size(*bytes),
                size(*limit)
            ),
            Self::NotText => f.write_str("it is not UTF-8 text"),
            Self::OutsideRoot => f.write_str(
                "it is outside the bundle's folder (a link that leads out of it, or a path with ..)",
            ),
            Self::LinkedFolder => f.write_str("it is a link to a folder, which plane does not follow"),
            Self::NameNotUtf8 => f.write_str("its name is not UTF-8"),
            Self::TooDeep { max } => write!(f, "it is more than {max} folders deep"),
            Self::TooMany { max } => write!(f, "the folder holds more than {max} entries"),
        }
    }
}

/// A size in bytes as people read it (`4 MiB`, `12345 bytes`).
pub fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 * 1024 {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a size shown to one decimal place"
        )]
        let mib = bytes as f64 / (1024.0 * 1024.0);
        format!("{mib:.1} MiB")
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads `path` as text: it must be a regular file (a symlink to one is followed) of at most
/// `limit` bytes. Its kind is checked before it is opened, so a FIFO never blocks, and no more
/// than `limit` + 1 bytes are ever read, so a file that grows while it is read stops too.
///
/// # Errors
/// A [`ReadRefusal`] saying why.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadRefusal> {
    let metadata = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadRefusal::NotFound,
        _ => ReadRefusal::Io(err.to_string()),
    })?;
    if !metadata.is_file() {
        return Err(ReadRefusal::NotRegular(kind_of(&metadata)));
    }
    if metadata.len() > limit {
        return Err(ReadRefusal::TooLarge {
            bytes: metadata.len(),
            limit,
        });
    }
    let file = std::fs::File::open(path).map_err(|err| ReadRefusal::Io(err.to_string()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| ReadRefusal::Io(err.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(ReadRefusal::TooLarge {
            bytes: bytes.len() as u64,
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|_| ReadRefusal::NotText)
}

/// What a file that is not a regular file is, in words.
fn kind_of(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("v.yaml");
        std::fs::write(&small, "a: 1\n").unwrap();
        assert_eq!(read_text(&small, 100).unwrap(), "a: 1\n");
        assert_eq!(
            read_text(&small, 3),
            Err(ReadRefusal::TooLarge { bytes: 5, limit: 3 })
        );
        assert_eq!(
            read_text(dir.path(), 100),
            Err(ReadRefusal::NotRegular("a directory"))
        );
        assert_eq!(
            read_text(Path::new("/dev/zero"), 100),
            Err(ReadRefusal::NotRegular("a character device"))
        );
        assert_eq!(
            read_text(&dir.path().join("missing"), 100),
            Err(ReadRefusal::NotFound)
        );
        std::fs::write(&small, [0xff, 0xfe]).unwrap();
        assert_eq!(read_text(&small, 100), Err(ReadRefusal::NotText));
        assert_eq!(size(4 * 1024 * 1024), "4 MiB");
    }
}
