// Package pathwatch tells, cheaply and on every commit, whether a path
// still names the file a process opened.
//
// SQLite goes on writing to an open file that was renamed or deleted, and
// a restart then reads whatever the path holds: a store must not
// acknowledge a commit unless its path still names the file it wrote. An
// os.Stat of the path answers that, but costs a path walk and a system
// call on every commit (measured: two of them cost ~6.7 µs of CPU a
// commit on this project's machines, the largest cost a lone append had
// beyond its SQL).
//
// A Watch keeps inotify watches (Linux) on every directory along the
// path, each for the one name in it that the path goes through. A rename,
// an unlink or a creation of one of those names queues an event before
// the system call that made it returns, so a check that finds the
// inotify queue empty (one non-blocking read) knows that no such change
// has completed since the Watch was made. Events for other names (a
// database's own -wal and -shm files, a busy temp directory) are read and
// dropped. Once an event touches the path, or the queue overflows, or a
// watched directory goes away, the Watch stats the path on every check
// from then on: it answers exactly as os.Stat would, and a file moved
// back is found again. A full stat also runs at least once every
// FullEvery, which bounds how long a change that no event reports (a
// mount over a directory on the path) goes unseen. Only a path that names
// no file, or another file, has changed: a stat failing otherwise (EACCES,
// EIO) is returned as an error, since it tells nothing of which file the
// path names and may pass.
//
// Where inotify is missing or unavailable (another OS, a path through a
// symbolic link, the per-user instance limit reached) every check stats
// the path.
//
// New also takes names of files beside the path (a database's -wal): the
// watch on the last directory then watches those names too, and Changed
// says which path changed, so that one inotify read a check covers all of
// them.
//
// What must not live here: what the file holds, or what a caller does
// when it moved.
package pathwatch
