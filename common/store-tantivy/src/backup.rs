//! A copy of the index at one commit, taken while the index is written by another process
//! (`sluice backup` beside a running `sluice serve`), by its files alone.
//!
//! tantivy never changes a segment file once written and replaces `meta.json` whole: a commit
//! point is a `meta.json` and the files it names. The backup keeps the bytes of one `meta.json`,
//! hard-links the files of its segments, and starts again from a newer `meta.json` when one of
//! them is gone (a merge finished and its inputs were deleted between the two reads). It then
//! opens the copy and counts its documents, so a backup that would not open is never reported
//! as taken.

use std::path::Path;

use sluice_storage::link_or_copy;
use sluice_store::StoreError;
use tantivy::Index;

use crate::schema::FORMAT_FILE;

/// Tries before giving up on an index whose merges keep replacing the commit being copied.
const ATTEMPTS: usize = 20;

/// What a backup of the index took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexBackup {
    pub documents: u64,
    pub files: usize,
}

fn failed(path: &Path, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        detail: format!("backup: {detail}"),
    }
}

/// Copies the last commit of the index in `dir` to `out` (created, or empty).
pub fn back_up(dir: &Path, out: &Path) -> Result<IndexBackup, StoreError> {
    for _ in 0..ATTEMPTS {
        if out.exists() {
            std::fs::remove_dir_all(out).map_err(|e| failed(out, e))?;
        }
        std::fs::create_dir_all(out).map_err(|e| failed(out, e))?;
        let meta = std::fs::read(dir.join("meta.json")).map_err(|e| failed(dir, e))?;
        std::fs::write(out.join("meta.json"), &meta).map_err(|e| failed(out, e))?;
        std::fs::copy(dir.join(FORMAT_FILE), out.join(FORMAT_FILE)).map_err(|e| failed(dir, e))?;
        let copy = Index::open_in_dir(out).map_err(|e| failed(out, e))?;
        let segments = copy
            .searchable_segment_metas()
            .map_err(|e| failed(out, e))?;
        let mut files = 0;
        let mut gone = false;
        for segment in &segments {
            for file in segment.list_files() {
                match link_or_copy(&dir.join(&file), &out.join(&file)) {
                    Ok(()) => files += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // tantivy names a deletes file for every segment; one without deletes
                        // has none. Any other file missing: the segment was merged away.
                        let unused_deletes = segment.delete_opstamp().is_none()
                            && file.extension().is_some_and(|ext| ext == "del");
                        gone |= !unused_deletes;
                    }
                    Err(e) => return Err(failed(&dir.join(&file), e)),
                }
            }
        }
        if gone {
            continue;
        }
        drop(copy);
        let opened = Index::open_in_dir(out).map_err(|e| failed(out, e))?;
        let reader = opened.reader().map_err(|e| failed(out, e))?;
        return Ok(IndexBackup {
            documents: reader.searcher().num_docs(),
            files,
        });
    }
    Err(failed(
        dir,
        format!("every one of {ATTEMPTS} commits was merged away while it was copied"),
    ))
}
