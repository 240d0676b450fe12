//! [`RedbStore`]: the crash-safe [`SdkStorage`] of the node, one redb file in the data dir.
//!
//! Tables: commitments by block number (SSZ), block number by `preconfirmation_hash`, tx-list
//! bytes by (block number, hash), block number by tx-list hash, and counters. The head is the
//! highest stored commitment.
//!
//! Only the two hash indexes have random keys, and their entries are 40 bytes: a write of a
//! few thousand blocks (catch-up groups pages into one transaction) dirties each index's leaves
//! about once, while the bulky rows (commitments, tx-list bytes) are appended in block order.
//! Keeping tx-list bytes in a hash-keyed table instead (schema 1) cost one dirty 4 KiB page per
//! stored tx list; files of schema 1 are migrated when opened.
//!
//! Every write is one redb transaction with redb's default `Durability::Immediate`: when a
//! write returns `Ok`, it is fsynced and survives SIGKILL or power loss, and a page of
//! commitments lands entirely or not at all. redb takes an exclusive lock on the file, so a
//! second process on the same data dir fails with [`NodeError::DataDirLocked`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use p2p::{SdkStorage, StorageError, StorageStats};
use preconfirmation_types::{
    preconfirmation_hash, ChainLimits, SignedCommitment, WireMessage, B256,
};
use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableHandle,
};

use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use crate::error::NodeError;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "preconf.redb";

/// redb's page cache. redb's own default (1 GiB) lets the cache, and so the node's RSS, grow
/// with the chain during catch-up; reads of recent blocks fit well within this.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Block number → SSZ `SignedCommitment`.
const COMMITMENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("commitments");
/// `preconfirmation_hash` → block number.
const NUMBER_BY_HASH: TableDefinition<'_, &[u8; 32], u64> = TableDefinition::new("number_by_hash");
/// (block number, `raw_tx_list_hash`) → tx list bytes: appended in block order, pruned by
/// range.
const TXLIST_BYTES_BY_BLOCK: TableDefinition<'_, (u64, &[u8; 32]), &[u8]> =
    TableDefinition::new("txlist_bytes_by_block");
/// `raw_tx_list_hash` → the block number its bytes are stored under.
const TXLIST_NUMBER_BY_HASH: TableDefinition<'_, &[u8; 32], u64> =
    TableDefinition::new("txlist_number_by_hash");
/// Schema 1: `raw_tx_list_hash` → (block number, tx list bytes). Read only to migrate.
const LEGACY_TXLISTS: TableDefinition<'_, &[u8; 32], (u64, &[u8])> =
    TableDefinition::new("txlists");
/// Schema 1: (block number, `raw_tx_list_hash`) → (). Deleted by the migration.
const LEGACY_TXLISTS_BY_BLOCK: TableDefinition<'_, (u64, &[u8; 32]), ()> =
    TableDefinition::new("txlists_by_block");
/// Counters kept in step with the tables.
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
const TXLIST_BYTES: &str = "txlist_bytes";

/// First wait before the database is reopened after an I/O error latched it.
pub const REOPEN_BACKOFF_INITIAL: Duration = Duration::from_millis(100);

/// Longest wait between two reopens: the backoff doubles from [`REOPEN_BACKOFF_INITIAL`] while
/// writes keep failing (a disk still full), and starts over after a write succeeds. Bounds how
/// long after the disk has room again the store takes writes.
pub const REOPEN_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The redb-backed store.
///
/// After an I/O error (a full disk, `EIO`) redb fails every later operation with
/// "Previous I/O error occurred" until the database is closed and opened again. The store does
/// that itself: the first operation after the backoff ([`REOPEN_BACKOFF_INITIAL`] doubling to
/// [`REOPEN_BACKOFF_MAX`]) drops the database and opens the file again, which repairs it to its
/// last committed transaction — everything a write acknowledged with `Ok` (a failed commit
/// never was). Between the error and the reopen, operations go to the latched database (reads
/// of cached pages still succeed); while a reopen fails, they fail with
/// [`StorageError::Backend`].
#[derive(Debug)]
pub struct RedbStore {
    /// `None` only while a reopen failed (until the next attempt succeeds).
    db: RwLock<Option<Database>>,
    /// Set when an operation met a latched database; cleared by a successful reopen. Read on
    /// every operation: the [`Reopen`] mutex is taken only while it is set.
    latched: AtomicBool,
    reopen: Mutex<Reopen>,
    reopens: AtomicU64,
    path: PathBuf,
    limits: ChainLimits,
}

/// When the next reopen may run.
#[derive(Debug)]
struct Reopen {
    /// No reopen before this.
    next_attempt: Instant,
    /// The wait after the next failure (a failed reopen, or a database latched again).
    backoff: Duration,
}

/// Why one store operation failed, before the SDK sees it as a [`StorageError`].
#[derive(Debug)]
enum Failure {
    /// redb failed; [`Failure::latches`] tells whether the database must be reopened.
    Redb(redb::Error),
    /// Anything else (stored bytes that do not decode).
    Store(StorageError),
}

impl Failure {
    /// Whether redb latched the database: after these it fails every operation with
    /// `PreviousIo` until it is reopened.
    fn latches(&self) -> bool {
        matches!(
            self,
            Self::Redb(redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::Backend(_))
        )
    }
}

macro_rules! redb_failure {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(error: $error) -> Self {
                Self::Redb(error.into())
            }
        }
    )*};
}
redb_failure!(
    redb::Error,
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError
);

/// The block number `index` files `hash` under, read within `tx`.
fn number_by_hash(
    tx: &ReadTransaction,
    index: TableDefinition<'_, &[u8; 32], u64>,
    hash: &B256,
) -> Result<Option<u64>, Failure> {
    Ok(tx.open_table(index)?.get(&hash.0)?.map(|v| v.value()))
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Self::Store(error)
    }
}

impl From<Failure> for StorageError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Redb(e) => StorageError::Backend(e.to_string()),
            Failure::Store(e) => e,
        }
    }
}

/// Opens (or creates) the database file at `path`.
fn open_database(path: &Path) -> Result<Database, DatabaseError> {
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
}

/// Opens the existing database file at `path` again: a file that went missing is an error,
/// never silently replaced by an empty one.
fn reopen_database(path: &Path) -> Result<Database, DatabaseError> {
    redb::Builder::new().set_cache_size(CACHE_BYTES).open(path)
}

impl RedbStore {
    /// Opens (or creates) the database in `data_dir`; fails with
    /// [`NodeError::DataDirLocked`] when another process has it open.
    pub fn open(data_dir: &Path, limits: ChainLimits) -> Result<Self, NodeError> {
        if data_dir.exists() && !data_dir.is_dir() {
            // `create_dir_all` would say "File exists", which reads as if all were well.
            let e = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            return Err(NodeError::io(data_dir, e));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| NodeError::io(data_dir, e))?;
        let path = data_dir.join(DB_FILE);
        let db = open_database(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => NodeError::DataDirLocked { path: path.clone() },
            other => NodeError::storage(other),
        })?;
        // Create every table up front so readers never meet a missing table (a reopen finds
        // them in the file).
        let tx = db.begin_write().map_err(NodeError::storage)?;
        {
            tx.open_table(COMMITMENTS).map_err(NodeError::storage)?;
            tx.open_table(NUMBER_BY_HASH).map_err(NodeError::storage)?;
            tx.open_table(TXLIST_BYTES_BY_BLOCK)
                .map_err(NodeError::storage)?;
            tx.open_table(TXLIST_NUMBER_BY_HASH)
                .map_err(NodeError::storage)?;
            tx.open_table(COUNTERS).map_err(NodeError::storage)?;
            migrate_legacy_txlists(&tx).map_err(NodeError::storage)?;
        }
        tx.commit().map_err(NodeError::storage)?;
        Ok(Self {
            db: RwLock::new(Some(db)),
            latched: AtomicBool::new(false),
            reopen: Mutex::new(Reopen {
                next_attempt: Instant::now(),
                backoff: REOPEN_BACKOFF_INITIAL,
            }),
            reopens: AtomicU64::new(0),
            path,
            limits,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many times the database was reopened after an I/O error.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    fn decode(&self, bytes: &[u8]) -> Result<SignedCommitment, StorageError> {
        SignedCommitment::decode_capped(bytes, &self.limits)
            .map_err(|e| StorageError::Corrupt(e.to_string()))
    }

    /// The commitment stored under block `number`, read within `tx`.
    fn commitment_at(
        &self,
        tx: &ReadTransaction,
        number: u64,
    ) -> Result<Option<SignedCommitment>, Failure> {
        let table = tx.open_table(COMMITMENTS)?;
        let found = table.get(number)?;
        Ok(found.map(|bytes| self.decode(bytes.value())).transpose()?)
    }

    /// Runs `op` on the database (reopened first if it is latched and the backoff has
    /// passed); a failure that latches it schedules a reopen.
    fn with_db<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, Failure>,
    ) -> Result<T, StorageError> {
        self.reopen_if_due();
        let (result, generation) = {
            let db = self.db.read();
            let Some(db) = db.as_ref() else {
                return Err(StorageError::Backend(format!(
                    "database {} closed after an I/O error; reopening with backoff",
                    self.path.display()
                )));
            };
            // Reopens take the write lock: the count names the database `op` ran on.
            (op(db), self.reopens.load(Ordering::Acquire))
        };
        // The read lock is released: `latch` takes the reopen mutex, and a reopen holds that
        // mutex while it waits for the write lock.
        match result {
            Ok(value) => Ok(value),
            Err(failure) => {
                if failure.latches() {
                    self.latch(&failure, generation);
                }
                Err(failure.into())
            }
        }
    }

    /// [`Self::with_db`] for a write: one that succeeds restarts the reopen backoff.
    fn write_with_db<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, Failure>,
    ) -> Result<T, StorageError> {
        let result = self.with_db(op);
        if result.is_ok() && !self.latched.load(Ordering::Acquire) {
            let mut reopen = self.reopen.lock();
            if reopen.backoff != REOPEN_BACKOFF_INITIAL {
                reopen.backoff = REOPEN_BACKOFF_INITIAL;
            }
        }
        result
    }

    /// The database `generation` (the reopen count) is latched: schedules a reopen after the
    /// backoff, once per latch; nothing when it has been reopened since.
    fn latch(&self, failure: &Failure, generation: u64) {
        let mut reopen = self.reopen.lock();
        if self.reopens.load(Ordering::Acquire) != generation
            || self.latched.swap(true, Ordering::AcqRel)
        {
            return;
        }
        warn!(
            error = ?failure,
            retry_in_ms = reopen.backoff.as_millis() as u64,
            "storage I/O error: the database will be reopened"
        );
        reopen.next_attempt = Instant::now() + reopen.backoff;
        reopen.backoff = (reopen.backoff * 2).min(REOPEN_BACKOFF_MAX);
    }

    /// Reopens the latched database once its backoff has passed. Other callers meanwhile do
    /// not wait: they go on to the latched database and fail as before.
    fn reopen_if_due(&self) {
        if !self.latched.load(Ordering::Acquire) {
            return;
        }
        let Some(mut reopen) = self.reopen.try_lock() else {
            return;
        };
        if !self.latched.load(Ordering::Acquire) || Instant::now() < reopen.next_attempt {
            return;
        }
        let mut db = self.db.write();
        // Closes the file (and its lock) before it is opened again.
        drop(db.take());
        match reopen_database(&self.path) {
            Ok(reopened) => {
                *db = Some(reopened);
                self.latched.store(false, Ordering::Release);
                self.reopens.fetch_add(1, Ordering::AcqRel);
                info!(path = %self.path.display(), reopens = self.reopens(), "storage: database reopened");
            }
            Err(e) => {
                warn!(
                    error = %e,
                    retry_in_ms = reopen.backoff.as_millis() as u64,
                    "storage: reopening the database failed"
                );
                reopen.next_attempt = Instant::now() + reopen.backoff;
                reopen.backoff = (reopen.backoff * 2).min(REOPEN_BACKOFF_MAX);
            }
        }
    }
}

fn number_of(signed: &SignedCommitment) -> Result<u64, StorageError> {
    u64::try_from(signed.preconf().block_number)
        .map_err(|_| StorageError::Corrupt("block number above u64".into()))
}

/// Writes `commitments` inside `tx`.
fn write_commitments(
    tx: &redb::WriteTransaction,
    commitments: &[SignedCommitment],
) -> Result<(), Failure> {
    let mut by_number = tx.open_table(COMMITMENTS)?;
    let mut by_hash = tx.open_table(NUMBER_BY_HASH)?;
    let mut numbers = tx.open_table(TXLIST_NUMBER_BY_HASH)?;
    let mut bytes = tx.open_table(TXLIST_BYTES_BY_BLOCK)?;
    for signed in commitments {
        let number = number_of(signed)?;
        let hash = preconfirmation_hash(signed.preconf());
        by_number.insert(number, signed.to_ssz().as_slice())?;
        by_hash.insert(&hash.0, number)?;
        let txlist = signed.preconf().raw_tx_list_hash;
        if txlist != B256::ZERO {
            refile_txlist(&mut numbers, &mut bytes, &txlist, number)?;
        }
    }
    Ok(())
}

/// A stored tx list is filed under the highest block that references it, so pruning below
/// a block keeps every list a kept block still needs (a list repeated by a later block moves
/// up with it). Moves `hash`'s bytes to `number` when they are filed under a lower block;
/// returns whether the list is stored at all.
fn refile_txlist(
    numbers: &mut redb::Table<'_, &[u8; 32], u64>,
    bytes: &mut redb::Table<'_, (u64, &[u8; 32]), &[u8]>,
    hash: &B256,
    number: u64,
) -> Result<bool, Failure> {
    let Some(filed) = numbers.get(&hash.0)?.map(|v| v.value()) else {
        return Ok(false);
    };
    if filed < number {
        let moved = bytes.remove((filed, &hash.0))?.map(|v| v.value().to_vec());
        if let Some(moved) = moved {
            bytes.insert((number, &hash.0), moved.as_slice())?;
        }
        numbers.insert(&hash.0, number)?;
    }
    Ok(true)
}

/// Writes `txlists` inside `tx` (one already stored is not written again, only filed under
/// the higher of its blocks: [`refile_txlist`]) and updates the byte counter.
fn write_txlists(
    tx: &redb::WriteTransaction,
    txlists: &[(B256, u64, Bytes)],
) -> Result<(), Failure> {
    let mut numbers = tx.open_table(TXLIST_NUMBER_BY_HASH)?;
    let mut bytes = tx.open_table(TXLIST_BYTES_BY_BLOCK)?;
    let mut added = 0u64;
    for (hash, block_number, txlist) in txlists {
        if refile_txlist(&mut numbers, &mut bytes, hash, *block_number)? {
            continue;
        }
        numbers.insert(&hash.0, *block_number)?;
        bytes.insert((*block_number, &hash.0), txlist.as_ref())?;
        added += txlist.len() as u64;
    }
    adjust_txlist_bytes(tx, |bytes| bytes + added)
}

/// Moves schema 1's tx lists (bytes keyed by hash) into the schema 2 tables inside `tx` and
/// deletes the schema 1 tables; nothing to do for a file without them.
fn migrate_legacy_txlists(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let legacy = tx.list_tables()?.any(|t| t.name() == LEGACY_TXLISTS.name());
    if !legacy {
        return Ok(());
    }
    {
        let old = tx.open_table(LEGACY_TXLISTS)?;
        let mut numbers = tx.open_table(TXLIST_NUMBER_BY_HASH)?;
        let mut bytes = tx.open_table(TXLIST_BYTES_BY_BLOCK)?;
        for entry in old.iter()? {
            let (hash, value) = entry?;
            let (number, txlist) = value.value();
            numbers.insert(hash.value(), number)?;
            bytes.insert((number, hash.value()), txlist)?;
        }
    }
    tx.delete_table(LEGACY_TXLISTS)?;
    tx.delete_table(LEGACY_TXLISTS_BY_BLOCK)?;
    Ok(())
}

/// Rewrites the stored tx-list byte counter inside `tx`.
fn adjust_txlist_bytes(
    tx: &redb::WriteTransaction,
    update: impl FnOnce(u64) -> u64,
) -> Result<(), Failure> {
    let mut counters = tx.open_table(COUNTERS)?;
    let bytes = counters.get(TXLIST_BYTES)?.map_or(0, |v| v.value());
    counters.insert(TXLIST_BYTES, update(bytes))?;
    Ok(())
}

impl SdkStorage for RedbStore {
    fn put_commitments(&self, commitments: &[SignedCommitment]) -> Result<(), StorageError> {
        self.put_page(commitments, &[])
    }

    fn put_txlist(&self, hash: B256, block_number: u64, txlist: Bytes) -> Result<(), StorageError> {
        self.put_txlists(&[(hash, block_number, txlist)])
    }

    /// All of `txlists` in one durable transaction (one sync for the whole group).
    fn put_txlists(&self, txlists: &[(B256, u64, Bytes)]) -> Result<(), StorageError> {
        self.put_page(&[], txlists)
    }

    /// A catch-up page's commitments and tx lists in one durable transaction.
    fn put_page(
        &self,
        commitments: &[SignedCommitment],
        txlists: &[(B256, u64, Bytes)],
    ) -> Result<(), StorageError> {
        if commitments.is_empty() && txlists.is_empty() {
            return Ok(());
        }
        self.write_with_db(|db| {
            let tx = db.begin_write()?;
            if !txlists.is_empty() {
                write_txlists(&tx, txlists)?;
            }
            if !commitments.is_empty() {
                write_commitments(&tx, commitments)?;
            }
            Ok(tx.commit()?)
        })
    }

    fn commitment_by_number(
        &self,
        block_number: u64,
    ) -> Result<Option<SignedCommitment>, StorageError> {
        self.with_db(|db| self.commitment_at(&db.begin_read()?, block_number))
    }

    fn commitment_by_hash(&self, hash: &B256) -> Result<Option<SignedCommitment>, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            match number_by_hash(&tx, NUMBER_BY_HASH, hash)? {
                Some(number) => self.commitment_at(&tx, number),
                None => Ok(None),
            }
        })
    }

    fn commitments_from(
        &self,
        start: u64,
        max: usize,
    ) -> Result<Vec<SignedCommitment>, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(COMMITMENTS)?;
            let max = max.min(self.limits.max_commitments_per_response.max(1) * 64);
            let mut out = Vec::with_capacity(max.min(self.limits.max_commitments_per_response));
            let mut expected = start;
            for entry in table.range(start..)? {
                if out.len() >= max {
                    break;
                }
                let (number, bytes) = entry?;
                if number.value() != expected {
                    break;
                }
                out.push(self.decode(bytes.value())?);
                expected = expected.saturating_add(1);
            }
            Ok(out)
        })
    }

    fn txlist(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let Some(number) = number_by_hash(&tx, TXLIST_NUMBER_BY_HASH, hash)? else {
                return Ok(None);
            };
            let bytes = tx.open_table(TXLIST_BYTES_BY_BLOCK)?;
            let found = bytes.get((number, &hash.0))?;
            Ok(found.map(|v| Bytes::copy_from_slice(v.value())))
        })
    }

    /// One lookup in the hash index; the bytes are neither read nor copied.
    fn has_txlist(&self, hash: &B256) -> Result<bool, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            Ok(number_by_hash(&tx, TXLIST_NUMBER_BY_HASH, hash)?.is_some())
        })
    }

    fn head(&self) -> Result<Option<SignedCommitment>, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(COMMITMENTS)?;
            let last = table.last()?;
            Ok(last
                .map(|(_, bytes)| self.decode(bytes.value()))
                .transpose()?)
        })
    }

    fn prune_below(&self, block_number: u64) -> Result<u64, StorageError> {
        self.write_with_db(|db| {
            let tx = db.begin_write()?;
            let removed;
            {
                let mut by_number = tx.open_table(COMMITMENTS)?;
                let mut by_hash = tx.open_table(NUMBER_BY_HASH)?;
                let mut old = Vec::new();
                for entry in by_number.range(..block_number)? {
                    let (number, bytes) = entry?;
                    let hash = preconfirmation_hash(self.decode(bytes.value())?.preconf());
                    old.push((number.value(), hash));
                }
                for (number, hash) in &old {
                    by_hash.remove(&hash.0)?;
                    by_number.remove(number)?;
                }
                removed = old.len() as u64;

                let mut bytes = tx.open_table(TXLIST_BYTES_BY_BLOCK)?;
                let mut numbers = tx.open_table(TXLIST_NUMBER_BY_HASH)?;
                let mut old_txlists = Vec::new();
                let mut freed = 0u64;
                for entry in bytes.range((0u64, &[0u8; 32])..(block_number, &[0u8; 32]))? {
                    let (key, value) = entry?;
                    let (number, hash) = key.value();
                    old_txlists.push((number, *hash));
                    freed += value.value().len() as u64;
                }
                for (number, hash) in &old_txlists {
                    bytes.remove((*number, hash))?;
                    numbers.remove(hash)?;
                }
                adjust_txlist_bytes(&tx, |bytes| bytes.saturating_sub(freed))?;
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    fn stats(&self) -> Result<StorageStats, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let commitments = tx.open_table(COMMITMENTS)?;
            let txlists = tx.open_table(TXLIST_NUMBER_BY_HASH)?;
            let counters = tx.open_table(COUNTERS)?;
            let lowest_block = commitments.first()?.map(|(k, _)| k.value());
            let highest_block = commitments.last()?.map(|(k, _)| k.value());
            let txlist_bytes = counters.get(TXLIST_BYTES)?.map_or(0, |v| v.value());
            Ok(StorageStats {
                commitments: commitments.len()?,
                txlists: txlists.len()?,
                txlist_bytes,
                lowest_block,
                highest_block,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2p::testkit::ChainBuilder;
    use preconfirmation_types::{raw_tx_list_hash, Address, ChainSpec};

    fn blocks(count: usize) -> Vec<p2p::testkit::Block> {
        let mut chain = ChainBuilder::new(ChainSpec::new(167_001, Address::ZERO), 2, 4, 0, 1);
        chain.blocks(count, 64)
    }

    /// The signed commitments of `count` chained blocks.
    fn commitments(count: usize) -> Vec<SignedCommitment> {
        blocks(count).into_iter().map(|b| b.commitment).collect()
    }

    fn open(dir: &Path) -> RedbStore {
        RedbStore::open(dir, ChainLimits::default()).unwrap()
    }

    /// Stores `blocks`' commitments, then each one's tx list under its block number.
    fn put_blocks(store: &RedbStore, blocks: &[p2p::testkit::Block]) {
        let commitments: Vec<_> = blocks.iter().map(|b| b.commitment.clone()).collect();
        store.put_commitments(&commitments).unwrap();
        for (i, b) in blocks.iter().enumerate() {
            let txlist = b.txlist.as_ref().unwrap().txlist.to_vec();
            store
                .put_txlist(raw_tx_list_hash(&txlist), i as u64 + 1, txlist.into())
                .unwrap();
        }
    }

    /// A store opened in a fresh temporary dir, which lives as long as the returned guard.
    fn fresh() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        (dir, store)
    }

    #[test]
    fn commitments_and_txlists_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = blocks(10);
        let commitments: Vec<_> = blocks.iter().map(|b| b.commitment.clone()).collect();
        {
            put_blocks(&open(dir.path()), &blocks);
        }
        let store = open(dir.path());
        assert_eq!(store.head().unwrap(), commitments.last().cloned());
        assert_eq!(
            store.commitment_by_number(3).unwrap(),
            Some(commitments[2].clone())
        );
        let hash = preconfirmation_hash(commitments[4].preconf());
        assert_eq!(
            store.commitment_by_hash(&hash).unwrap(),
            Some(commitments[4].clone())
        );
        assert_eq!(
            store.commitments_from(2, 4).unwrap(),
            commitments[1..5].to_vec()
        );
        let txlist = blocks[0].txlist.as_ref().unwrap().txlist.to_vec();
        assert_eq!(
            store
                .txlist(&raw_tx_list_hash(&txlist))
                .unwrap()
                .unwrap()
                .as_ref(),
            &txlist[..]
        );
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.commitments, stats.txlists, stats.txlist_bytes),
            (10, 10, 640)
        );
        assert_eq!(
            (stats.lowest_block, stats.highest_block),
            (Some(1), Some(10))
        );
    }

    /// `has_txlist` answers from the hash index alone: present, absent, pruned; and an index
    /// entry whose bytes are not there (never written by the store itself, planted here)
    /// shows that the bytes table is not read.
    #[test]
    fn has_txlist_reads_only_the_hash_index() {
        let (_dir, store) = fresh();
        let txlist = Bytes::from_static(&[3u8; 48]);
        let hash = raw_tx_list_hash(&txlist);
        assert!(!store.has_txlist(&hash).unwrap());
        store.put_txlist(hash, 2, txlist).unwrap();
        assert!(store.has_txlist(&hash).unwrap());
        assert!(!store.has_txlist(&B256::repeat_byte(0x44)).unwrap());
        store.prune_below(3).unwrap();
        assert!(!store.has_txlist(&hash).unwrap());

        let indexed_only = B256::repeat_byte(0x55);
        {
            let db = store.db.read();
            let tx = db.as_ref().unwrap().begin_write().unwrap();
            tx.open_table(TXLIST_NUMBER_BY_HASH)
                .unwrap()
                .insert(&indexed_only.0, 9)
                .unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(store.txlist(&indexed_only).unwrap(), None);
        assert!(store.has_txlist(&indexed_only).unwrap());
    }

    #[test]
    fn commitments_from_stops_at_a_gap() {
        let (_dir, store) = fresh();
        let blocks = blocks(6);
        let some: Vec<_> = [0, 1, 2, 4, 5]
            .iter()
            .map(|&i| blocks[i].commitment.clone())
            .collect();
        store.put_commitments(&some).unwrap();
        assert_eq!(store.commitments_from(1, 100).unwrap().len(), 3);
    }

    /// A read asks for at most 64 responses' worth, however many the caller wants (a peer's
    /// `max_count` is capped before it gets here; this bounds every other caller).
    #[test]
    fn commitments_from_reads_at_most_64_responses_worth() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ChainLimits {
            max_commitments_per_response: 2,
            ..ChainLimits::default()
        };
        let store = RedbStore::open(dir.path(), limits).unwrap();
        store.put_commitments(&commitments(130)).unwrap();
        assert_eq!(store.commitments_from(1, usize::MAX).unwrap().len(), 128);
        assert_eq!(store.commitments_from(1, 5).unwrap().len(), 5);
    }

    #[test]
    fn prune_removes_old_blocks_and_their_txlists() {
        let (_dir, store) = fresh();
        let blocks = blocks(8);
        let commitments: Vec<_> = blocks.iter().map(|b| b.commitment.clone()).collect();
        put_blocks(&store, &blocks);
        assert_eq!(store.prune_below(5).unwrap(), 4);
        assert_eq!(store.commitment_by_number(4).unwrap(), None);
        let gone = preconfirmation_hash(commitments[0].preconf());
        assert_eq!(store.commitment_by_hash(&gone).unwrap(), None);
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.commitments, stats.txlists, stats.txlist_bytes),
            (4, 4, 256)
        );
        assert_eq!(stats.lowest_block, Some(5));
    }

    /// The same list for blocks 1 and 5 (a commitment repeating an earlier block's list, as a
    /// re-proposal may): pruning below 3 keeps it, since block 5 still needs it; it goes with
    /// block 5. Whether the list is stored before or after block 5's commitment.
    #[test]
    fn prune_keeps_a_list_a_kept_block_repeats() {
        for list_first in [true, false] {
            let (_dir, store) = fresh();
            let mut commitments: Vec<_> = commitments(5);
            let txlist = b"repeated in block 5".to_vec();
            let hash = raw_tx_list_hash(&txlist);
            for i in [0, 4] {
                commitments[i].commitment.preconf.raw_tx_list_hash = hash;
            }
            if list_first {
                store
                    .put_page(&commitments[..1], &[(hash, 1, txlist.clone().into())])
                    .unwrap();
                store.put_commitments(&commitments[1..]).unwrap();
            } else {
                store.put_commitments(&commitments).unwrap();
                store.put_txlist(hash, 5, txlist.clone().into()).unwrap();
                store.put_txlist(hash, 1, txlist.clone().into()).unwrap();
            }
            let before = store.stats().unwrap();
            assert_eq!(
                (before.txlists, before.txlist_bytes),
                (1, txlist.len() as u64)
            );
            store.prune_below(3).unwrap();
            assert_eq!(
                store.txlist(&hash).unwrap().as_deref(),
                Some(&txlist[..]),
                "list_first={list_first}: block 5 still needs it"
            );
            assert_eq!(store.stats().unwrap().txlist_bytes, txlist.len() as u64);
            store.prune_below(6).unwrap();
            assert_eq!(store.txlist(&hash).unwrap(), None, "gone with block 5");
            assert_eq!(store.stats().unwrap().txlist_bytes, 0);
        }
    }

    #[test]
    fn schema_1_txlists_are_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = blocks(4);
        let lists: Vec<(B256, u64, Vec<u8>)> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let txlist = b.txlist.as_ref().unwrap().txlist.to_vec();
                (raw_tx_list_hash(&txlist), i as u64 + 1, txlist)
            })
            .collect();
        {
            // A schema 1 file: tx-list bytes keyed by hash, an index by block.
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut old = tx.open_table(LEGACY_TXLISTS).unwrap();
                let mut by_block = tx.open_table(LEGACY_TXLISTS_BY_BLOCK).unwrap();
                for (hash, number, txlist) in &lists {
                    old.insert(&hash.0, (*number, txlist.as_slice())).unwrap();
                    by_block.insert((*number, &hash.0), ()).unwrap();
                }
                let mut counters = tx.open_table(COUNTERS).unwrap();
                counters.insert(TXLIST_BYTES, 4 * 64).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = open(dir.path());
        for (hash, _, txlist) in &lists {
            assert_eq!(store.txlist(hash).unwrap().unwrap().as_ref(), &txlist[..]);
        }
        let stats = store.stats().unwrap();
        assert_eq!((stats.txlists, stats.txlist_bytes), (4, 256));
        let db = store.db.read();
        let tx = db.as_ref().unwrap().begin_read().unwrap();
        let names: Vec<String> = tx
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        assert!(!names
            .iter()
            .any(|n| n == "txlists" || n == "txlists_by_block"));
        drop(tx);
        drop(db);
        // The migrated lists prune by block like new ones.
        store.prune_below(3).unwrap();
        assert_eq!(store.txlist(&lists[0].0).unwrap(), None);
        assert!(store.txlist(&lists[2].0).unwrap().is_some());
        assert_eq!(store.stats().unwrap().txlist_bytes, 128);
    }

    #[test]
    fn a_txlist_shared_by_two_blocks_is_stored_once_under_the_later() {
        let (_dir, store) = fresh();
        let txlist = Bytes::from_static(&[9u8; 32]);
        let hash = raw_tx_list_hash(&txlist);
        store.put_txlist(hash, 5, txlist.clone()).unwrap();
        store.put_txlist(hash, 7, txlist.clone()).unwrap();
        assert_eq!(store.txlist(&hash).unwrap(), Some(txlist.clone()));
        let stats = store.stats().unwrap();
        assert_eq!((stats.txlists, stats.txlist_bytes), (1, 32));
        // Filed under block 7, the later: pruning below 6 keeps it (block 7 needs it) ...
        store.prune_below(6).unwrap();
        assert_eq!(store.txlist(&hash).unwrap(), Some(txlist));
        // ... and pruning below 8 removes it, and the index with it.
        store.prune_below(8).unwrap();
        assert_eq!(store.txlist(&hash).unwrap(), None);
        assert_eq!(store.stats().unwrap().txlists, 0);
    }

    /// A latched database is reopened by the first call after the backoff, not before (a hot
    /// loop of calls reopens nothing); the backoff doubles up to its bound while the database
    /// keeps latching, and a write that succeeds restarts it. (The real full disk:
    /// `a_full_disk_is_reopened_and_writes_resume` in `tests/faults.rs`.)
    #[test]
    fn a_latched_database_is_reopened_after_the_backoff_only() {
        let (_dir, store) = fresh();
        let commitments: Vec<_> = commitments(3);
        store.put_commitments(&commitments[..2]).unwrap();
        let latched = Failure::Redb(redb::Error::PreviousIo);
        assert!(latched.latches());
        assert!(!Failure::Redb(redb::Error::Corrupted("x".into())).latches());
        assert!(!Failure::Store(StorageError::Backend("x".into())).latches());

        let before = Instant::now();
        store.latch(&latched, 0);
        {
            let mut reopen = store.reopen.lock();
            assert!(
                reopen.next_attempt >= before + REOPEN_BACKOFF_INITIAL,
                "due after the backoff"
            );
            // Not due for the rest of the test (however slow the machine runs the loop).
            reopen.next_attempt = Instant::now() + Duration::from_secs(3600);
        }
        for _ in 0..1000 {
            assert_eq!(store.head().unwrap(), Some(commitments[1].clone()));
        }
        assert_eq!(store.reopens(), 0, "not due yet");
        assert_eq!(store.reopen.lock().backoff, REOPEN_BACKOFF_INITIAL * 2);
        store.reopen.lock().next_attempt = Instant::now();
        assert_eq!(store.head().unwrap(), Some(commitments[1].clone()));
        assert_eq!(store.reopens(), 1);
        // A failure met on the database before the reopen does not latch the new one.
        store.latch(&latched, 0);
        assert!(!store.latched.load(Ordering::Acquire));

        for _ in 0..10 {
            store.latch(&latched, store.reopens());
            store.reopen.lock().next_attempt = Instant::now();
            store.head().unwrap();
        }
        assert_eq!(store.reopens(), 11);
        assert_eq!(store.reopen.lock().backoff, REOPEN_BACKOFF_MAX);
        // Only a write that succeeds on a database not latched restarts it: not one that
        // fails without latching, nor one that succeeds on a database latched meanwhile.
        let refused: Result<(), _> =
            store.write_with_db(|_| Err(Failure::Store(StorageError::Backend("x".into()))));
        assert!(refused.is_err());
        assert_eq!(store.reopen.lock().backoff, REOPEN_BACKOFF_MAX);
        store.latched.store(true, Ordering::Release);
        store.reopen.lock().next_attempt = Instant::now() + Duration::from_secs(3600);
        assert!(store.write_with_db(|_| Ok(())).is_ok());
        assert_eq!(store.reopen.lock().backoff, REOPEN_BACKOFF_MAX);
        store.latched.store(false, Ordering::Release);
        store.put_commitments(&commitments[2..]).unwrap();
        assert_eq!(store.reopen.lock().backoff, REOPEN_BACKOFF_INITIAL);
        assert_eq!(store.stats().unwrap().commitments, 3);
    }

    /// While a reopen fails (here: the file is gone) every call fails with a typed error and
    /// the next attempt waits for the backoff; the file is never replaced by an empty one, and
    /// once it is back the next attempt reopens it with everything stored.
    #[test]
    fn a_failed_reopen_is_retried_after_the_backoff() {
        let (dir, store) = fresh();
        let commitments: Vec<_> = commitments(2);
        store.put_commitments(&commitments).unwrap();
        let moved = dir.path().join("moved.redb");
        std::fs::rename(store.path(), &moved).unwrap();
        store.latch(&Failure::Redb(redb::Error::PreviousIo), 0);
        store.reopen.lock().next_attempt = Instant::now();
        let failed_at = Instant::now();
        let failed = store.head();
        assert!(
            matches!(&failed, Err(StorageError::Backend(e)) if e.contains("reopening")),
            "{failed:?}"
        );
        assert!(!store.path().exists(), "no empty database created");
        assert_eq!(store.reopens(), 0);
        {
            let mut reopen = store.reopen.lock();
            assert!(
                reopen.next_attempt > failed_at,
                "the next attempt waits for the backoff"
            );
            assert_eq!(reopen.backoff, REOPEN_BACKOFF_INITIAL * 4);
            // Not due until the test says so, however slow the machine is.
            reopen.next_attempt = Instant::now() + Duration::from_secs(3600);
        }
        std::fs::rename(&moved, store.path()).unwrap();
        assert!(store.head().is_err(), "not due yet");
        store.reopen.lock().next_attempt = Instant::now();
        assert_eq!(store.head().unwrap(), Some(commitments[1].clone()));
        assert_eq!(store.reopens(), 1);
    }

    #[test]
    fn second_open_of_the_same_dir_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path());
        let second = RedbStore::open(dir.path(), ChainLimits::default());
        assert!(
            matches!(second, Err(NodeError::DataDirLocked { .. })),
            "{second:?}"
        );
    }
}
