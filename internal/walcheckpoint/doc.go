// Package walcheckpoint checkpoints a SQLite file's write-ahead log on a
// connection of its own, so that no commit waits for a checkpoint.
//
// SQLite's automatic checkpoint runs inside the commit that grows the WAL
// past wal_autocheckpoint pages: that commit, and everything queued behind
// it (a group commit's appenders, the projections' next batch and the
// writes waiting for it), waits while thousands of pages are copied into
// the database file and both files are synced. A Checkpointer instead
// watches how many frames the WAL holds past those already copied and,
// once they reach its threshold, runs a PASSIVE checkpoint on its own
// connection (it never blocks a writer or a reader) and then a Finish on
// the writer's connection, between two of its transactions, which copies
// the few frames written meanwhile: SQLite writes the WAL from its start
// again only at a commit that finds every frame copied, which a writer
// that never pauses would otherwise never find. The writers' connections
// set wal_autocheckpoint = 0. Open opens the checkpointer's connection
// with mode=rw, so that it never creates a file where a moved one was. The
// checkpoint's ordering (sync the WAL,
// copy, sync the database file) is SQLite's own, so durability is
// unchanged.
//
// It reads the WAL file's header and frame headers (their layout is part
// of SQLite's documented file format), never the "-shm" file: SQLite
// holds POSIX locks on that one, and a process that closes any descriptor
// of a file loses all its locks on it (a crash with SIGBUS when another
// connection then rebuilt the wal-index). SQLite takes no locks on the
// WAL file.
//
// Checkpoint is the one place the wal_checkpoint pragma is run, in its
// three uses: PASSIVE (Run, the Checkpointer and its Finish), FULL (the
// SQLite store's rescue of a WAL deleted under it, which copies its frames
// into the file before writes are refused) and TRUNCATE (Truncate, at a
// clean close, so the database file alone holds everything).
//
// What must not live here: what the files hold. The package knows SQLite's
// WAL and nothing about logs or projections.
package walcheckpoint
