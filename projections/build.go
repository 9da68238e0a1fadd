package projections

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"math"
	"sync"

	"github.com/interactionledger/ledger/domain"
)

// progressEvery is how many events pass between progress reports.
const progressEvery = 1 << 16

// builder folds the log into the tables (with suffix sfx) of some
// projections, reading the store in one streaming pass and writing in large
// transactions. It is how rebuild, as-of and verify compute projections:
// never event by event, never through the bus.
type builder struct {
	db       *sql.DB
	store    domain.EventReader
	projs    []projection
	sfx      string
	foldKeys int
	// fresh says the tables are empty and have no secondary indexes yet:
	// the first flush inserts without reading, then the indexes are built.
	fresh   bool
	indexed bool
	// latest, set for the first run into fresh tables when the store is a
	// domain.LatestReader, reads only each interaction's last toggle: every
	// row is then written once, by plain inserts, and indexed at the end.
	latest domain.LatestReader
	// loaded are the projections the folds write; copies are the
	// interaction tables that a build of latest toggles fills from
	// another's rows instead (splitCopies).
	loaded   []projection
	copies   []tableCopy
	label    string
	total    int64
	progress func(Progress)
	reportMu sync.Mutex // the reading and the writing goroutines both report
}

// head as an upper bound means "to the end of the log".
const head = math.MaxInt64

// readChunk is how many events the reading goroutine hands over at once.
const readChunk = 4096

// run folds the events with after < position <= upTo and returns the last
// position folded (after when there was none). One goroutine reads and
// decodes the log while this one folds and writes, so the store's decoding
// overlaps the projections' work.
func (b *builder) run(ctx context.Context, after, upTo int64) (int64, error) {
	if upTo <= after {
		return after, b.index(ctx)
	}
	restore, err := lowMemory(ctx, b.db)
	if err != nil {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	defer restore()
	b.latest, b.loaded, b.copies = nil, b.projs, nil
	if lr, ok := b.store.(domain.LatestReader); ok && b.fresh && !b.indexed && after == 0 {
		b.latest = lr
		b.loaded, b.copies = splitCopies(b.projs)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []domain.Toggle, 4)
	readErr := make(chan error, 1)
	go func() { readErr <- b.read(ctx, after, upTo, chunks) }()
	last, err := b.foldChunks(ctx, after, chunks)
	if err != nil {
		cancel()
		for range chunks { // let the reader finish
		}
		<-readErr
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	if err := <-readErr; err != nil {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	if err := b.copy(ctx); err != nil {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	if err := b.index(ctx); err != nil {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	b.report("read", last)
	return last, nil
}

// read sends the events in (after, upTo], as toggles, in chunks and closes
// chunks.
func (b *builder) read(ctx context.Context, after, upTo int64, chunks chan<- []domain.Toggle) error {
	defer close(chunks)
	send := func(buf []domain.Toggle) error {
		select {
		case chunks <- buf:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	buf := make([]domain.Toggle, 0, readChunk)
	add := func(t domain.Toggle) error {
		buf = append(buf, t)
		if len(buf) < readChunk {
			return nil
		}
		err := send(buf)
		buf = make([]domain.Toggle, 0, readChunk)
		return err
	}
	for t, err := range b.toggles(ctx, after, upTo) {
		if err != nil {
			return err
		}
		if err := add(t); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		return send(buf)
	}
	return nil
}

// toggles yields what run folds: the latest toggles, or the toggles of the
// events in (after, upTo].
func (b *builder) toggles(ctx context.Context, after, upTo int64) iter.Seq2[domain.Toggle, error] {
	if b.latest != nil {
		return b.latest.ReadLatest(ctx, upTo)
	}
	return func(yield func(domain.Toggle, error) bool) {
		for e, err := range b.store.ReadEvents(ctx, domain.EventFilter{After: after}) {
			if err != nil {
				yield(domain.Toggle{}, err)
				return
			}
			if e.Position > upTo || !yield(e.Toggle(), nil) {
				return // only the whole log's read passes upTo
			}
		}
	}
}

// foldChunks folds what read sends, handing the fold to a writing
// goroutine whenever it holds FoldKeys interactions, and at the end: the
// next fold fills while the last one is written, so at most two are held.
func (b *builder) foldChunks(ctx context.Context, last int64, chunks <-chan []domain.Toggle) (int64, error) {
	// Growing a fold's changes by appending cost more than folding itself
	// (copies of tens of MB, each into fresh pages): size them up front to
	// what the fold can reach, as no more keys than events remain.
	keys := int(max(min(int64(b.foldKeys), b.total-last), 0))
	w := b.startWriter(ctx)
	fold := newFoldCap(keys)
	var read int64 // latest events read: they come in no position order
	for chunk := range chunks {
		if err := w.failed(); err != nil {
			return 0, err
		}
		for _, t := range chunk {
			if b.latest != nil {
				fold.addLatest(t)
				read++
			} else {
				fold.add(t)
			}
			last = max(last, t.Position)
			if fold.n%progressEvery == 0 {
				b.reportRead(read, last)
			}
			if len(fold.changes) < b.foldKeys {
				continue
			}
			if err := w.write(fold); err != nil {
				return 0, err
			}
			fold = newFoldCap(keys)
		}
	}
	if err := w.write(fold); err != nil {
		return 0, err
	}
	return last, w.close()
}

// reportRead reports the read's progress: the position reached or, for
// latest events (which come in no position order), how many were read.
func (b *builder) reportRead(read, last int64) {
	if b.latest != nil {
		b.report("latest", read)
		return
	}
	b.report("read", last)
}

// foldWriter flushes folds on its own goroutine, one at a time, in order.
type foldWriter struct {
	folds chan *batch
	done  chan struct{}
	err   error // set before done is closed
}

func (b *builder) startWriter(ctx context.Context) *foldWriter {
	w := &foldWriter{folds: make(chan *batch), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for fold := range w.folds {
			if err := b.flush(ctx, fold); err != nil {
				w.err = err
				return
			}
		}
	}()
	return w
}

// write hands fold over, waiting while the previous one is written; it
// returns the writer's error if a write failed.
func (w *foldWriter) write(fold *batch) error {
	select {
	case w.folds <- fold:
		return nil
	case <-w.done:
		return w.err
	}
}

// failed returns the writer's error once a write has failed.
func (w *foldWriter) failed() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// close waits for the last fold to be written.
func (w *foldWriter) close() error {
	close(w.folds)
	<-w.done
	return w.err
}

// flush writes the fold's net effect to every projection in one
// transaction.
func (b *builder) flush(ctx context.Context, fold *batch) error {
	if fold.n == 0 {
		return nil
	}
	// Latest folds never meet a row already written: every flush is fresh.
	fold.fresh = b.latest != nil || b.fresh && !b.indexed
	fold.seal()
	b.report("write", fold.last)
	err := inTx(ctx, b.db, func(tx querier) error {
		for _, p := range b.loaded {
			if err := p.apply(ctx, tx, b.sfx, fold, nil); err != nil {
				return fmt.Errorf("%s: %w", p.name(), err)
			}
		}
		return nil
	})
	if err != nil || b.latest != nil {
		return err
	}
	return b.index(ctx)
}

// tableCopy is an interaction table filled from another's rows.
type tableCopy struct{ dst, src *interactionTable }

// splitCopies splits projs for a build of latest toggles: the interaction
// tables hold the same rows (one per interaction that is on) in different
// key orders, so the folds write only the first of them, and the others
// are copied from it once it is whole (copyFrom). Writing a row from Go
// costs ~1.7 us a table (binding six values, then the insert); a copy
// ~1 us, and SQLite sorts it on the build's second core.
func splitCopies(projs []projection) (loaded []projection, copies []tableCopy) {
	var src *interactionTable
	for _, p := range projs {
		t, ok := p.(*interactionTable)
		switch {
		case !ok:
			loaded = append(loaded, p)
		case src == nil:
			src = t
			loaded = append(loaded, p)
		default:
			copies = append(copies, tableCopy{dst: t, src: src})
		}
	}
	return loaded, copies
}

// copy fills the copied tables, after the folds are written.
func (b *builder) copy(ctx context.Context) error {
	if len(b.copies) == 0 {
		return nil
	}
	b.report("copy", 0)
	return inTx(ctx, b.db, func(tx querier) error {
		for _, c := range b.copies {
			if err := c.dst.copyFrom(ctx, tx, c.src, b.sfx); err != nil {
				return fmt.Errorf("copy %s: %w", c.dst.name(), err)
			}
		}
		return nil
	})
}

// index builds the secondary indexes once, after the first flush: sorting
// a loaded table into an index is much faster than growing it row by row.
func (b *builder) index(ctx context.Context) error {
	if b.indexed || !b.fresh {
		return nil
	}
	b.report("index", 0)
	err := inTx(ctx, b.db, func(tx querier) error {
		gen, err := nextGeneration(ctx, tx)
		if err != nil {
			return err
		}
		for _, p := range b.projs {
			if err := p.index(ctx, tx, b.sfx, gen); err != nil {
				return fmt.Errorf("index %s: %w", p.name(), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.indexed = true
	return nil
}

func (b *builder) report(phase string, done int64) {
	b.reportMu.Lock()
	defer b.reportMu.Unlock()
	if b.progress == nil {
		return
	}
	if phase != "read" && phase != "latest" && phase != "write" {
		done = b.total
	}
	b.progress(Progress{Projection: b.label, Phase: phase, Done: done, Total: max(b.total, done)})
}

func label(projs []projection) string {
	if len(projs) == 1 {
		return projs[0].name()
	}
	return "all"
}

// dropTables drops the tables (suffix sfx) of projs if they exist.
func dropTables(ctx context.Context, db *sql.DB, projs []projection, sfx string) error {
	return inTx(ctx, db, func(tx querier) error { return dropIn(ctx, tx, projs, sfx) })
}

// dropIn drops the tables (suffix sfx) of projs, if they exist, in tx.
func dropIn(ctx context.Context, tx querier, projs []projection, sfx string) error {
	for _, p := range projs {
		for _, t := range p.tables() {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t+sfx); err != nil {
				return err
			}
		}
	}
	return nil
}

// createTables drops and creates the tables (suffix sfx) of projs, without
// secondary indexes, in one transaction.
func createTables(ctx context.Context, db *sql.DB, projs []projection, sfx string) error {
	return inTx(ctx, db, func(tx querier) error {
		if err := dropIn(ctx, tx, projs, sfx); err != nil {
			return err
		}
		for _, p := range projs {
			if err := p.create(ctx, tx, sfx); err != nil {
				return fmt.Errorf("create %s: %w", p.name(), err)
			}
		}
		return nil
	})
}
