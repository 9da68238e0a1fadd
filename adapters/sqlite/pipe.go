package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// chunkRows is how many rows the scanning goroutine hands over at a time;
// chunks is how many chunks exist per read, which bounds its memory.
const (
	chunkRows = 256
	chunks    = 4
)

// chunkPool recycles chunk buffers across reads: the projections' tailer
// reads many times a second.
var chunkPool = sync.Pool{New: func() any {
	b := make([]eventcodec.Row, 0, chunkRows)
	return &b
}}

type chunk struct {
	rows []eventcodec.Row
	err  error
}

// readParallel steps q with args on its own connection and goroutine,
// which scans rows in chunks, while the caller's goroutine decodes them
// and emits them until emit returns false: the two halves of a long read
// then run on two cores.
func (s *EventStore) readParallel(ctx context.Context, q string, args []any, emit func(domain.Event) bool) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan chunk, chunks)
	free := make(chan []eventcodec.Row, chunks)
	for range chunks {
		free <- (*chunkPool.Get().(*[]eventcodec.Row))[:0]
	}
	go func() {
		scanChunks(inner, s.read, q, args, full, free)
		close(full)
	}()
	stop := func() {
		cancel()
		for range full { // let the scanners see the cancellation and close their rows
		}
	}
	// The scanners have returned once full is closed; only then can the
	// buffers in free go back to the pool (those in flight are dropped).
	// Their stale rows are overwritten row by row when they are reused.
	defer func() {
		for {
			select {
			case b := <-free:
				chunkPool.Put(&b)
			default:
				return
			}
		}
	}()
	var dec eventcodec.RowDecoder
	for c := range full {
		if c.err != nil {
			stop()
			return translateCtx(ctx, c.err)
		}
		for i := range c.rows {
			e, err := dec.Decode(&c.rows[i])
			if err != nil {
				stop()
				return err
			}
			if !emit(e) {
				stop()
				return nil
			}
		}
		free <- c.rows[:0]
	}
	return ctx.Err()
}

// scanChunks sends q's rows to full in chunks taken from free. It stops
// early when ctx ends.
func scanChunks(ctx context.Context, db *sql.DB, q string, args []any, full chan<- chunk, free <-chan []eventcodec.Row) {
	send := func(c chunk) bool {
		select {
		case full <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		send(chunk{err: err})
		return
	}
	defer rows.Close()
	for more := true; more; {
		var buf []eventcodec.Row
		select {
		case buf = <-free:
		case <-ctx.Done():
			return
		}
		for len(buf) < chunkRows {
			if more = rows.Next(); !more {
				break
			}
			buf = append(buf, eventcodec.Row{})
			if err := scanRow(rows, &buf[len(buf)-1]); err != nil {
				send(chunk{err: err})
				return
			}
		}
		if len(buf) > 0 && !send(chunk{rows: buf}) {
			return
		}
	}
	if err := rows.Err(); err != nil {
		send(chunk{err: err})
	}
}
