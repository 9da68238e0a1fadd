package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/interactionledger/ledger/domain"
)

// errEnough stops a log read once the wanted position is passed.
var errEnough = errors.New("enough events read")

// progressEvery is how many events pass between progress reports.
const progressEvery = 1 << 16

// builder folds the log into the tables (with suffix sfx) of some
// projections, reading the store in one streaming pass and writing in large
// transactions. It is how rebuild, as-of and verify compute projections:
// never event by event, never through the bus.
type builder struct {
	db       *sql.DB
	store    domain.EventStore
	projs    []projection
	sfx      string
	foldKeys int
	// fresh says the tables are empty and have no secondary indexes yet:
	// the first flush inserts without reading, then the indexes are built.
	fresh    bool
	indexed  bool
	label    string
	total    int64
	progress func(Progress)
}

// head as an upper bound means "to the end of the log".
const head = math.MaxInt64

// run folds the events with after < position <= upTo and returns the last
// position folded (after when there was none).
func (b *builder) run(ctx context.Context, after, upTo int64) (int64, error) {
	last := after
	fold := newFold()
	if upTo <= after {
		return last, b.index(ctx)
	}
	err := b.store.ReadEvents(ctx, domain.EventFilter{After: after}, func(e domain.Event) error {
		if e.Position > upTo {
			return errEnough
		}
		fold.add(e)
		last = e.Position
		if fold.n%progressEvery == 0 {
			b.report("read", last)
		}
		if len(fold.changes) < b.foldKeys {
			return nil
		}
		if err := b.flush(ctx, fold); err != nil {
			return err
		}
		fold = newFold()
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	if err := b.flush(ctx, fold); err != nil {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	if err := b.index(ctx); err != nil {
		return 0, fmt.Errorf("build %s: %w", b.label, err)
	}
	b.report("read", last)
	return last, nil
}

// flush writes the fold's net effect to every projection in one
// transaction.
func (b *builder) flush(ctx context.Context, fold *batch) error {
	if fold.n == 0 {
		return nil
	}
	fold.fresh = b.fresh && !b.indexed
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, p := range b.projs {
		if err := p.apply(ctx, tx, b.sfx, fold, nil); err != nil {
			return fmt.Errorf("%s: %w", p.name(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return b.index(ctx)
}

// index builds the secondary indexes once, after the first flush: sorting
// a loaded table into an index is much faster than growing it row by row.
func (b *builder) index(ctx context.Context) error {
	if b.indexed || !b.fresh {
		return nil
	}
	b.report("index", 0)
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	gen, err := nextGeneration(ctx, tx)
	if err != nil {
		return err
	}
	for _, p := range b.projs {
		if err := p.index(ctx, tx, b.sfx, gen); err != nil {
			return fmt.Errorf("index %s: %w", p.name(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	b.indexed = true
	return nil
}

func (b *builder) report(phase string, done int64) {
	if b.progress == nil {
		return
	}
	if phase != "read" {
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

// createTables drops and creates the tables (suffix sfx) of projs, without
// secondary indexes, in one transaction.
func createTables(ctx context.Context, db *sql.DB, projs []projection, sfx string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, p := range projs {
		for _, t := range p.tables() {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t+sfx); err != nil {
				return err
			}
		}
		if err := p.create(ctx, tx, sfx); err != nil {
			return fmt.Errorf("create %s: %w", p.name(), err)
		}
	}
	return tx.Commit()
}
