//! Reads at a snapshot: a dataset's head, its chain, its item count and the stream of a
//! version's items. A snapshot is the manifest's chain read once; rows are then selected by
//! the published txids of that snapshot, so writes staged or published later are invisible.

use faultline_fp::fp;

use crate::error::{EngineError, Result};
use crate::manifest::{self, Link};
use crate::table::{self, Item};
use crate::Engine;

/// A dataset's latest published version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// The version (0 before the first write).
    pub version: u64,
    /// Items visible at that version, as recorded by its link.
    pub items_total: u64,
}

impl Engine {
    /// The published chain of `dataset`, oldest first.
    pub async fn versions(&self, dataset: &str) -> Result<Vec<Link>> {
        let mut connection = self.inner.manifest.lock().await;
        manifest::chain(&mut connection, dataset).await
    }

    /// Every dataset's published version, by name, read in one snapshot of the manifest.
    pub async fn heads(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        let mut connection = self.inner.manifest.lock().await;
        manifest::heads(&mut connection).await
    }

    /// The latest published version of `dataset`.
    pub async fn head(&self, dataset: &str) -> Result<Head> {
        let chain = self.versions(dataset).await?;
        Ok(chain.last().map_or(Head::default(), |link| Head {
            version: link.version,
            items_total: link.items_total,
        }))
    }

    /// How many items the latest version of `dataset` holds, counted from the rows.
    pub async fn item_count(&self, dataset: &str) -> Result<u64> {
        let txids: Vec<String> = self
            .versions(dataset)
            .await?
            .into_iter()
            .map(|l| l.txid)
            .collect();
        let table = self.table(dataset).await?;
        let mut connection = table.lock().await;
        table::count(&mut connection, &txids).await
    }

    /// Streams the items visible at `version` of `dataset`, `page_size` rows at a time.
    pub async fn stream(
        &self,
        dataset: &str,
        version: u64,
        page_size: usize,
    ) -> Result<VersionStream> {
        let chain = self.versions(dataset).await?;
        if version > chain.last().map_or(0, |l| l.version) {
            return Err(EngineError::UnknownVersion {
                dataset: dataset.to_owned(),
                version,
            });
        }
        let txids = chain
            .into_iter()
            .take_while(|l| l.version <= version)
            .map(|l| l.txid)
            .collect();
        Ok(VersionStream {
            engine: self.clone(),
            dataset: dataset.to_owned(),
            txids,
            after: 0,
            page_size: page_size.max(1),
            finished: false,
        })
    }
}

/// The items of one version, read page by page (other tasks may run between pages).
pub struct VersionStream {
    engine: Engine,
    dataset: String,
    txids: Vec<String>,
    after: i64,
    page_size: usize,
    finished: bool,
}

impl VersionStream {
    /// The next page, or `None` when the version is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Item>>> {
        if self.finished {
            return Ok(None);
        }
        fp!("engine.stream.next_page").await?;
        let table = self.engine.table(&self.dataset).await?;
        let mut connection = table.lock().await;
        let rows = table::page(&mut connection, &self.txids, self.after, self.page_size).await?;
        self.finished = rows.len() < self.page_size;
        self.after = rows.last().map_or(self.after, |(seq, _)| *seq);
        Ok(Some(rows.into_iter().map(|(_, item)| item).collect()))
    }

    /// Reads every remaining page.
    pub async fn collect(mut self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        while let Some(page) = self.next_page().await? {
            items.extend(page);
        }
        Ok(items)
    }
}
