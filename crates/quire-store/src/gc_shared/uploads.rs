//! Abandoned uploads: a build's objects in the shared store without its commit marker, whose
//! newest object is at least `gc_fresh` old by the store's clock (a builder stopped
//! mid-upload). Found by reading only, so a dry run can list them; deleted by a real run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use quire_core::IndexId;
use quire_release::AuditDraft;
use quire_release::retention::DeletedUpload;
use serde_json::json;

use super::{age, gc_draft, time_of};
use crate::artifacts::{ArtifactStore, Key, Listed, newest, transfer};
use crate::error::Result;
use crate::store::Store;

/// One abandoned upload: an uncommitted build of an index and its objects.
pub(super) struct Abandoned {
    index_id: IndexId,
    digest: String,
    objects: Vec<Listed>,
    written: SystemTime,
}

impl Abandoned {
    /// As the report lists it.
    pub(super) fn report(&self) -> DeletedUpload {
        DeletedUpload {
            index_id: self.index_id.clone(),
            content_digest: self.digest.clone(),
            objects: self.objects.len() as u64,
        }
    }
}

impl Store {
    /// Every upload in the store that never committed and whose newest object is at least
    /// `gc_fresh` old at `now`, both by the store's clock. Reads only.
    pub(super) fn abandoned_uploads(
        &self,
        store: &dyn ArtifactStore,
        now: SystemTime,
    ) -> Result<Vec<Abandoned>> {
        let mut abandoned = Vec::new();
        self.each_abandoned_upload(store, now, &mut |upload| {
            abandoned.push(upload);
            Ok(())
        })?;
        Ok(abandoned)
    }

    /// Hand each abandoned upload (as [`abandoned_uploads`](Self::abandoned_uploads) finds
    /// them) to `found` as soon as it is found, so a real run deletes one before it lists the
    /// next index (a builder committing meanwhile risks no more than that one listing).
    pub(super) fn each_abandoned_upload(
        &self,
        store: &dyn ArtifactStore,
        now: SystemTime,
        found: &mut dyn FnMut(Abandoned) -> Result<()>,
    ) -> Result<()> {
        for id in transfer::index_ids(store)? {
            let committed = transfer::index_builds(store, &id)?;
            for digest in store.children(&Key::index(&id))? {
                let Ok(base) = Key::index_build(&id, &digest) else {
                    continue;
                };
                if committed.contains(&digest) {
                    continue;
                }
                let objects = store.list_objects(&base)?;
                let Some(written) = newest(&objects) else {
                    continue;
                };
                if age(now, written) >= self.options.gc_fresh {
                    found(Abandoned {
                        index_id: id.clone(),
                        digest,
                        objects,
                        written,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Delete `upload` from the store, with its `index.upload.delete` event: what went.
    pub(super) fn delete_upload(
        &self,
        store: &dyn ArtifactStore,
        upload: Abandoned,
        actor: &str,
        reason: &str,
    ) -> Result<DeletedUpload> {
        for object in &upload.objects {
            store.delete(&object.key)?;
        }
        let (id, digest) = (&upload.index_id, &upload.digest);
        tracing::info!(index = %id, digest, "abandoned upload deleted");
        self.audit(AuditDraft {
            evidence: json!({
                "store": store.location(),
                "content_digest": digest,
                "objects": upload.objects.len(),
                "last_written": time_of(upload.written),
            }),
            ..gc_draft("index.upload.delete", id, actor, reason)
        })?;
        Ok(upload.report())
    }
}

/// The indices of which nothing would be left in the store once `uploads` went (every object
/// of the index is in one of them).
pub(super) fn emptied_by(
    store: &dyn ArtifactStore,
    uploads: &[Abandoned],
) -> Result<BTreeSet<IndexId>> {
    let mut abandoned: BTreeMap<&IndexId, usize> = BTreeMap::new();
    for upload in uploads {
        *abandoned.entry(&upload.index_id).or_default() += upload.objects.len();
    }
    let mut emptied = BTreeSet::new();
    for (id, count) in abandoned {
        if store.list(&Key::index(id))?.len() <= count {
            emptied.insert(id.clone());
        }
    }
    Ok(emptied)
}
