package legacy

import (
	"encoding/csv"
	"fmt"
	"io"

	"github.com/interactionledger/ledger/domain"
)

// MaxRecordBytes bounds one record of the file (its line, or lines when a
// quoted field holds line breaks), its line break included. A legacy row
// is about a hundred bytes; without a bound, a file with no line break (a
// binary file, /dev/zero) or one huge field was read into memory whole,
// until the process ran out of it, and Ctrl-C did not stop the read.
const MaxRecordBytes = 1 << 20

// recordReader reads the file's records, each of at most MaxRecordBytes.
type recordReader struct {
	*csv.Reader
	bound *boundedReader
}

func newRecordReader(r io.Reader) *recordReader {
	b := &boundedReader{r: r}
	return &recordReader{Reader: csv.NewReader(b), bound: b}
}

// Read reads a record, then starts the next one's bound where it ended.
func (r *recordReader) Read() ([]string, error) {
	rec, err := r.Reader.Read()
	r.bound.start = r.InputOffset()
	return rec, err
}

// boundedReader hands the CSV reader at most MaxRecordBytes from start,
// where the record being read begins (csv.Reader.InputOffset after the
// last record; not after each of its lines, which a quoted field's line
// breaks would move): read counts the bytes handed out. A read past them
// means the record did not end within the bound, unless the file ends
// there, so the bound is exact.
type boundedReader struct {
	r     io.Reader
	read  int64
	start int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	left := b.start + MaxRecordBytes - b.read
	if left <= 0 {
		return 0, b.past()
	}
	n, err := b.r.Read(p[:min(int64(len(p)), left)])
	b.read += int64(n)
	return n, err
}

// past is the error of a read past the record's bound: io.EOF when the
// file ends there, else the record is too long.
func (b *boundedReader) past() error {
	var one [1]byte
	if _, err := io.ReadFull(b.r, one[:]); err != nil {
		return err
	}
	return fmt.Errorf("the record at byte %d is longer than %d bytes, not a row of a legacy export: %w",
		b.start, MaxRecordBytes, domain.ErrInvalidInput)
}
