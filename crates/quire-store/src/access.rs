//! How a process holds the data dir: the one type the store and its registry share.

/// How a process holds the data dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading only; other readers may hold it too.
    Read,
    /// Importing and building; no one else may hold it.
    Write,
}
