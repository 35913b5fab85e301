//! SQLite's two lock protocols, kept in memory for every handle on one file: the database
//! file lock (none, shared, reserved, pending, exclusive) and the eight wal-index (shm)
//! lock slots. The rules are those of SQLite's unix VFS between processes; a request that
//! the unix VFS would refuse returns [`Busy`] here too, so that the engine meets the same
//! contention it meets on real files.

/// A lock request was refused because another handle holds a conflicting lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// SQLite's file lock levels (`SQLITE_LOCK_*`).
pub mod level {
    /// No lock.
    pub const NONE: i32 = 0;
    /// Reading.
    pub const SHARED: i32 = 1;
    /// Intending to write; readers may still come.
    pub const RESERVED: i32 = 2;
    /// Waiting for readers to leave; no new reader may come.
    pub const PENDING: i32 = 3;
    /// Writing the database file.
    pub const EXCLUSIVE: i32 = 4;
}

/// The database-file lock of one file, across all its handles (identified by number).
#[derive(Debug, Default)]
pub struct FileLock {
    shared: u32,
    reserved: Option<u64>,
    pending: Option<u64>,
    exclusive: Option<u64>,
}

impl FileLock {
    /// Raises `handle` from `held` to `wanted` (SQLite only ever raises). Returns the level
    /// now held: on [`Busy`] the handle may still have gained a pending lock, as in SQLite.
    pub fn lock(&mut self, handle: u64, held: i32, wanted: i32) -> (i32, Result<(), Busy>) {
        if wanted <= held {
            return (held, Ok(()));
        }
        let mut now = held;
        if now == level::NONE {
            if self.pending.is_some() || self.exclusive.is_some() {
                return (now, Err(Busy));
            }
            self.shared += 1;
            now = level::SHARED;
        }
        if wanted >= level::RESERVED && now < level::RESERVED && wanted != level::EXCLUSIVE {
            if self.reserved.is_some() {
                return (now, Err(Busy));
            }
            self.reserved = Some(handle);
            now = level::RESERVED;
        }
        if wanted == level::EXCLUSIVE {
            if self.pending.is_some_and(|h| h != handle) {
                return (now, Err(Busy));
            }
            self.pending = Some(handle);
            now = now.max(level::PENDING);
            if self.shared > 1 {
                return (now, Err(Busy));
            }
            self.exclusive = Some(handle);
            now = level::EXCLUSIVE;
        }
        (now, Ok(()))
    }

    /// Lowers `handle` from `held` to `wanted` (`SHARED` or `NONE`).
    pub fn unlock(&mut self, handle: u64, held: i32, wanted: i32) -> i32 {
        if wanted >= held {
            return held;
        }
        if held > level::SHARED {
            self.release_write_locks(handle);
        }
        if wanted == level::NONE && held >= level::SHARED {
            self.shared -= 1;
        }
        wanted
    }

    fn release_write_locks(&mut self, handle: u64) {
        for slot in [&mut self.reserved, &mut self.pending, &mut self.exclusive] {
            if *slot == Some(handle) {
                *slot = None;
            }
        }
    }

    /// Whether any handle holds a reserved, pending or exclusive lock.
    pub fn reserved(&self) -> bool {
        self.reserved.is_some() || self.pending.is_some() || self.exclusive.is_some()
    }
}

/// The number of wal-index lock slots (`SQLITE_SHM_NLOCK`).
pub const SHM_SLOTS: usize = 8;

/// The wal-index lock slots of one file.
#[derive(Debug, Default)]
pub struct ShmLocks {
    shared: [u32; SHM_SLOTS],
    exclusive: [Option<u64>; SHM_SLOTS],
}

/// The wal-index locks one handle holds, as bit masks over the slots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShmHeld {
    /// Slots held shared.
    pub shared: u8,
    /// Slots held exclusively.
    pub exclusive: u8,
}

fn slots(mask: u8) -> impl Iterator<Item = usize> {
    (0..SHM_SLOTS).filter(move |slot| mask & (1 << slot) != 0)
}

impl ShmLocks {
    /// Takes the slots in `mask` shared for a handle that holds `held`.
    pub fn lock_shared(&mut self, handle: u64, held: &mut ShmHeld, mask: u8) -> Result<(), Busy> {
        let wanted = mask & !held.shared;
        if slots(wanted).any(|s| self.exclusive[s].is_some_and(|h| h != handle)) {
            return Err(Busy);
        }
        for slot in slots(wanted) {
            self.shared[slot] += 1;
        }
        held.shared |= wanted;
        Ok(())
    }

    /// Takes the slots in `mask` exclusively: all of them or none.
    pub fn lock_exclusive(
        &mut self,
        handle: u64,
        held: &mut ShmHeld,
        mask: u8,
    ) -> Result<(), Busy> {
        let conflict = slots(mask).any(|s| {
            let own_shared = u32::from(held.shared & (1 << s) != 0);
            self.exclusive[s].is_some_and(|h| h != handle) || self.shared[s] > own_shared
        });
        if conflict {
            return Err(Busy);
        }
        for slot in slots(mask) {
            self.exclusive[slot] = Some(handle);
        }
        held.exclusive |= mask;
        Ok(())
    }

    /// Releases whatever the handle holds among the slots in `mask`.
    pub fn unlock(&mut self, held: &mut ShmHeld, mask: u8) {
        for slot in slots(mask & held.shared) {
            self.shared[slot] -= 1;
        }
        for slot in slots(mask & held.exclusive) {
            self.exclusive[slot] = None;
        }
        held.shared &= !mask;
        held.exclusive &= !mask;
    }
}

#[cfg(test)]
mod tests {
    use super::level::*;
    use super::*;

    #[test]
    fn readers_share_and_a_writer_waits_for_them() {
        let mut lock = FileLock::default();
        assert_eq!(lock.lock(1, NONE, SHARED), (SHARED, Ok(())));
        assert_eq!(lock.lock(2, NONE, SHARED), (SHARED, Ok(())));
        assert_eq!(lock.lock(1, SHARED, RESERVED), (RESERVED, Ok(())));
        assert!(lock.reserved());
        assert_eq!(lock.lock(2, SHARED, RESERVED), (SHARED, Err(Busy)));
        assert_eq!(lock.lock(1, RESERVED, EXCLUSIVE), (PENDING, Err(Busy)));
        assert_eq!(
            lock.lock(3, NONE, SHARED),
            (NONE, Err(Busy)),
            "pending bars readers"
        );
        assert_eq!(lock.unlock(2, SHARED, NONE), NONE);
        assert_eq!(lock.lock(1, PENDING, EXCLUSIVE), (EXCLUSIVE, Ok(())));
        assert_eq!(lock.unlock(1, EXCLUSIVE, NONE), NONE);
        assert!(!lock.reserved());
        assert_eq!(lock.lock(3, NONE, SHARED), (SHARED, Ok(())));
    }

    #[test]
    fn shm_exclusive_excludes_every_other_holder() {
        let mut locks = ShmLocks::default();
        let (mut a, mut b) = (ShmHeld::default(), ShmHeld::default());
        locks.lock_shared(1, &mut a, 0b0000_1000).unwrap();
        assert_eq!(locks.lock_exclusive(2, &mut b, 0b0000_1100), Err(Busy));
        assert_eq!(b, ShmHeld::default(), "all or nothing");
        locks.lock_exclusive(2, &mut b, 0b0000_0100).unwrap();
        assert_eq!(locks.lock_shared(1, &mut a, 0b0000_0100), Err(Busy));
        locks.unlock(&mut b, 0b1111_1111);
        locks.lock_shared(1, &mut a, 0b0000_0100).unwrap();
        locks.unlock(&mut a, 0b0000_1100);
        assert_eq!(a, ShmHeld::default());
        locks.lock_exclusive(2, &mut b, 0b1111_1111).unwrap();
    }
}
