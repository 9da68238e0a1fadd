package legacy

import (
	"fmt"
	"io"

	"github.com/interactionledger/ledger/domain"
)

// MaxRecordBytes bounds one record of the file (its line, or lines when a
// quoted field holds line breaks). A legacy row is about a hundred bytes;
// without a bound, a file with no line break (a binary file, /dev/zero)
// or one huge field was read into memory whole, until the process ran out
// of it, and Ctrl-C did not stop the read.
const MaxRecordBytes = 1 << 20

// boundedReader fails the first read after the record being read has
// passed MaxRecordBytes (so a record is refused within one read of the
// bound): read counts the bytes read, end returns where the last whole
// record ended (csv.Reader.InputOffset).
type boundedReader struct {
	r    io.Reader
	read int64
	end  func() int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.read-b.end() > MaxRecordBytes {
		return 0, fmt.Errorf("the record at byte %d is longer than %d bytes, not a row of a legacy export: %w",
			b.end(), MaxRecordBytes, domain.ErrInvalidInput)
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}
