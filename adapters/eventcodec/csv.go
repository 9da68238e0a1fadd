package eventcodec

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"

	"github.com/interactionledger/ledger/domain"
)

// CSVHeader is the header row of the CSV history export.
var CSVHeader = []string{
	"position", "id", "type", "kind", "user", "target_type", "target_id",
	"stream_version", "occurred_at", "recorded_at", "metadata",
}

// CSVWriter writes events as CSV rows under CSVHeader, every cell passed
// through NeutraliseCell (the HTTP export and `ledger history --format csv`
// alike). It is not safe for concurrent use.
type CSVWriter struct {
	w      *csv.Writer
	header bool
	row    []string
}

// NewCSVWriter returns a writer that emits the header before the first row
// (or on Flush when there are no rows).
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), row: make([]string, len(CSVHeader))}
}

// Write writes one event row. It returns the underlying writer's error.
func (c *CSVWriter) Write(e domain.Event) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	meta := ""
	if e.Metadata.Len() > 0 {
		b, _ := json.Marshal(e.Metadata)
		meta = string(b)
	}
	r := c.row
	r[0] = strconv.FormatInt(e.Position, 10)
	r[1] = e.ID.String()
	r[2] = string(e.Type)
	r[3] = e.Kind.String()
	r[4] = e.User.String()
	r[5] = e.Target.Type()
	r[6] = e.Target.ID()
	r[7] = strconv.FormatInt(e.StreamVersion, 10)
	r[8] = e.OccurredAt.UTC().Format(TimeFormat)
	r[9] = e.RecordedAt.UTC().Format(TimeFormat)
	r[10] = meta
	for i, cell := range r {
		r[i] = NeutraliseCell(cell)
	}
	return c.w.Write(r)
}

// NeutraliseCell returns cell with a single quote before it when a
// spreadsheet would read it as a formula: it starts with '=', '+', '-',
// '@', a tab or a carriage return (OWASP, CSV injection). Of the export's
// columns only user and target_id can start so (their forms allow a
// leading '-' or '@'); metadata is a JSON object and starts with '{'. The
// quote is part of the value a CSV parser returns: strip it
// from those two columns to get the stored id back.
func NeutraliseCell(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + cell
	}
	return cell
}

// Flush writes the header if nothing was written yet and flushes. It
// returns the first write error.
func (c *CSVWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

func (c *CSVWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(CSVHeader)
}
