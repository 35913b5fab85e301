//! A simulated file's bytes and what a power loss would leave of them.
//!
//! A sync must not copy the file (that was a tenth of a run's time: SQLite syncs the WAL on
//! every commit). Instead the content keeps an undo log: the first write since the last
//! sync to each chunk saves that chunk's synced bytes. The durable content is rebuilt only
//! when a power-loss image is taken: the current bytes, cut to the synced length, with every
//! saved chunk put back.
//!
//! A power loss may also keep some of what was written since the last sync
//! ([`Content::after_power_loss`]): each chunk written since then (4 KiB, aligned, the sector
//! size the VFS reports) survives whole or not at all, independently of the others, which is
//! what a disk that reorders writes between flushes allows. A file that grew keeps its synced
//! length unless a chunk past it survives; then it ends after the last surviving chunk, and
//! the new bytes of the chunks that did not survive read as zeros (blocks allocated but never
//! written). A truncation since the last sync survives whole or not at all, decided by the
//! chunk holding the new end. Bytes no write touched never change (SQLite's
//! `POWERSAFE_OVERWRITE`).

use std::collections::BTreeMap;

/// The undo log's granularity (SQLite's default page size).
const CHUNK: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Content {
    bytes: Vec<u8>,
    /// The length at the last sync (`None`: never synced, so a power loss loses the file).
    synced_len: Option<usize>,
    /// For each chunk changed since the last sync, by index, its bytes at that sync (cut at
    /// `synced_len`). A chunk below `synced_len` with no entry is unchanged since the sync.
    undo: BTreeMap<usize, Vec<u8>>,
}

impl Content {
    /// Content that is all on disk already (a file in a crash image).
    pub fn synced(bytes: Vec<u8>) -> Content {
        Content {
            synced_len: Some(bytes.len()),
            bytes,
            undo: BTreeMap::new(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Writes `data` at `offset`, extending the file with zeros if it is shorter.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        self.save(offset, end);
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset..end].copy_from_slice(data);
    }

    /// Cuts or extends (with zeros) the file to `size` bytes.
    pub fn resize(&mut self, size: usize) {
        if size < self.bytes.len() {
            self.save(size, self.bytes.len());
        }
        self.bytes.resize(size, 0);
    }

    /// Replaces the whole content and syncs it (a plain file written and synced in one go).
    pub fn replace_synced(&mut self, bytes: &[u8]) {
        self.bytes = bytes.to_vec();
        self.sync();
    }

    /// Makes the current content durable.
    pub fn sync(&mut self) {
        self.synced_len = Some(self.bytes.len());
        self.undo.clear();
    }

    /// The content as of the last sync (`None` if the file was never synced): a power loss
    /// that keeps no unsynced chunk. The reference the tests check the undo log against.
    #[cfg(test)]
    pub fn durable(&self) -> Option<Vec<u8>> {
        let len = self.synced_len?;
        let mut out = self.bytes[..len.min(self.bytes.len())].to_vec();
        out.resize(len, 0);
        for (chunk, old) in &self.undo {
            let start = chunk * CHUNK;
            out[start..start + old.len()].copy_from_slice(old);
        }
        Some(out)
    }

    /// The chunks written (or cut off) since the last sync, ascending: the choices a power
    /// loss makes. None for a file never synced (it is lost whole).
    pub fn unsynced_chunks(&self) -> Vec<usize> {
        let Some(synced_len) = self.synced_len else {
            return Vec::new();
        };
        let mut chunks: Vec<usize> = self.undo.keys().copied().collect();
        if self.bytes.len() > synced_len {
            chunks.extend(synced_len / CHUNK..self.bytes.len().div_ceil(CHUNK));
        }
        chunks.sort_unstable();
        chunks.dedup();
        chunks
    }

    /// The content a power loss leaves when the unsynced chunks for which `survives` says
    /// yes made it to the disk and the others did not (see the module doc); `None` for a file
    /// never synced.
    pub fn after_power_loss(&self, mut survives: impl FnMut(usize) -> bool) -> Option<Vec<u8>> {
        let synced_len = self.synced_len?;
        let len = self.bytes.len();
        let kept: BTreeMap<usize, bool> = self
            .unsynced_chunks()
            .into_iter()
            .map(|chunk| (chunk, survives(chunk)))
            .collect();
        let survived = |chunk: usize| kept.get(&chunk).copied().unwrap_or(false);
        let (mut out, restore_from) = if len < synced_len && !survived(len / CHUNK) {
            // The truncation did not reach the disk: everything from its chunk on is as synced.
            let mut out = self.bytes.clone();
            out.resize(synced_len, 0);
            (out, len / CHUNK)
        } else {
            (self.bytes.clone(), usize::MAX)
        };
        for (chunk, old) in &self.undo {
            let start = chunk * CHUNK;
            let restore = *chunk >= restore_from || !survived(*chunk);
            if restore && start < out.len() {
                let end = (start + old.len()).min(out.len());
                out[start..end].copy_from_slice(&old[..end - start]);
            }
        }
        if len > synced_len {
            let mut end = synced_len;
            for chunk in synced_len / CHUNK..len.div_ceil(CHUNK) {
                let from = (chunk * CHUNK).max(synced_len);
                let to = ((chunk + 1) * CHUNK).min(len);
                if survived(chunk) {
                    end = to;
                } else {
                    out[from..to].fill(0);
                }
            }
            out.truncate(end);
        }
        Some(out)
    }

    /// Saves the synced bytes of every chunk in `start..end` not saved since the last sync.
    fn save(&mut self, start: usize, end: usize) {
        let Some(synced_len) = self.synced_len else {
            return;
        };
        let end = end.min(synced_len);
        if start >= end {
            return;
        }
        for chunk in start / CHUNK..=(end - 1) / CHUNK {
            let bytes = &self.bytes;
            self.undo.entry(chunk).or_insert_with(|| {
                let from = chunk * CHUNK;
                let to = ((chunk + 1) * CHUNK).min(synced_len);
                // Unchanged since the sync (no entry yet), so still all there.
                bytes[from..to].to_vec()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Draws below `bound` from the simulator's own generator.
    fn below(mut rng: Rng) -> impl FnMut(usize) -> usize {
        move |bound| rng.below_or_equal(bound as u64 - 1) as usize
    }

    /// A model: the durable content is a plain copy taken at each sync.
    #[derive(Default)]
    struct Model {
        bytes: Vec<u8>,
        durable: Option<Vec<u8>>,
    }

    /// Random writes, truncations, extensions and syncs, checked against a full copy at every
    /// sync, on a file spanning a few chunks.
    #[test]
    fn the_undo_log_rebuilds_exactly_what_the_last_sync_saw() {
        let mut next = below(Rng::new(7, 1));
        for _ in 0..200 {
            let (mut content, mut model) = (Content::default(), Model::default());
            for step in 0..60 {
                match next(6) {
                    0..=2 => {
                        let offset = next(5 * CHUNK);
                        let data = vec![(step + 1) as u8; 1 + next(2 * CHUNK)];
                        content.write(offset, &data);
                        if model.bytes.len() < offset + data.len() {
                            model.bytes.resize(offset + data.len(), 0);
                        }
                        model.bytes[offset..offset + data.len()].copy_from_slice(&data);
                    }
                    3 => {
                        let size = next(6 * CHUNK);
                        content.resize(size);
                        model.bytes.resize(size, 0);
                    }
                    _ => {
                        content.sync();
                        model.durable = Some(model.bytes.clone());
                    }
                }
                assert_eq!(content.bytes(), &model.bytes[..]);
                assert_eq!(content.durable(), model.durable);
            }
        }
    }

    /// Random writes, truncations, extensions and syncs; after each step a power loss with a
    /// random choice of surviving chunks leaves, chunk by chunk, either the synced bytes, the
    /// current bytes or (past the synced length) zeros. All lost is the synced content; all
    /// kept is the current content.
    #[test]
    fn a_power_loss_keeps_each_unsynced_chunk_whole_or_not_at_all() {
        let mut next = below(Rng::new(7, 2));
        for _ in 0..200 {
            let mut content = Content::synced(vec![7; next(3 * CHUNK)]);
            for step in 0..40 {
                match next(6) {
                    0..=2 => {
                        let data = vec![(step + 1) as u8; 1 + next(2 * CHUNK)];
                        content.write(next(5 * CHUNK), &data);
                    }
                    3 => content.resize(next(6 * CHUNK)),
                    _ => content.sync(),
                }
                let durable = content.durable().unwrap();
                assert_eq!(content.after_power_loss(|_| false).unwrap(), durable);
                assert_eq!(content.after_power_loss(|_| true).unwrap(), content.bytes());
                let mask = next(1 << 12);
                let image = content
                    .after_power_loss(|chunk| mask & (1 << (chunk % 12)) != 0)
                    .unwrap();
                for (index, got) in image.chunks(CHUNK).enumerate() {
                    let range = index * CHUNK..index * CHUNK + got.len();
                    let from = |bytes: &[u8]| bytes.get(range.clone()).map(<[u8]>::to_vec);
                    let ok = from(&durable).as_deref() == Some(got)
                        || from(content.bytes()).as_deref() == Some(got)
                        || (range.start..range.end).zip(got).all(|(at, byte)| {
                            let old = durable.get(at).copied();
                            let new = content.bytes().get(at).copied();
                            Some(*byte) == old || Some(*byte) == new || *byte == 0
                        });
                    assert!(ok, "chunk {index} is neither synced, current nor zeros");
                }
            }
        }
    }

    #[test]
    fn content_never_synced_is_lost_and_an_image_is_synced() {
        let mut content = Content::default();
        content.write(10, b"abc");
        assert_eq!(content.durable(), None);
        let image = Content::synced(b"xyz".to_vec());
        assert_eq!(image.durable().as_deref(), Some(&b"xyz"[..]));
    }
}
