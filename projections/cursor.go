package projections

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/interactionledger/ledger/domain"
)

// A cursor is the position of the last item of a page, bound to the list
// it came from by a checksum of the list and the position, so a client
// cannot reuse one on another list or alter one by accident. It holds no
// secret and no node's state: every node, and a views file rebuilt or
// deleted since, reads it the same (README, "How positions work"). A
// cursor made by hand reads nothing a client could not page to.
const (
	cursorPosLen = 8
	cursorSumLen = 16
)

func makeCursor(scope string, pos int64) string {
	buf := make([]byte, cursorPosLen, cursorPosLen+cursorSumLen)
	binary.BigEndian.PutUint64(buf, uint64(pos))
	buf = append(buf, cursorSum(scope, buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func cursorSum(scope string, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte("ledger cursor v2\x00"))
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:cursorSumLen]
}

// parseCursor returns the position a cursor stands for; the empty cursor
// means the first page (every position). It returns a
// *domain.ValidationError with Field "cursor" for anything else.
func parseCursor(scope, c string) (int64, error) {
	if c == "" {
		return 1<<63 - 1, nil
	}
	bad := &domain.ValidationError{Field: "cursor", Reason: "not a cursor issued for this list " +
		"(one of a build before this one's cursors, from before an upgrade, is not either: start again from the first page)"}
	// The exact length also refuses the CR and LF that the base64 decoder
	// skips: a cursor has one spelling.
	if len(c) != base64.RawURLEncoding.EncodedLen(cursorPosLen+cursorSumLen) {
		return 0, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) != cursorPosLen+cursorSumLen {
		return 0, bad
	}
	if !bytes.Equal(raw[cursorPosLen:], cursorSum(scope, raw[:cursorPosLen])) {
		return 0, bad
	}
	pos := int64(binary.BigEndian.Uint64(raw[:cursorPosLen]))
	if pos <= 0 {
		return 0, bad
	}
	return pos, nil
}

// Limits of the read API (docs/api.md).
const (
	// MaxLimit is the largest page size; DefaultLimit is used for 0.
	MaxLimit     = 1000
	DefaultLimit = 50
)

// pageArgs checks a page request and returns the limit to use and the
// position to read below.
func (s *Set) pageArgs(k domain.Kind, limit int, scope, cursor string) (int, int64, error) {
	if !s.cfg.Kinds.Has(k) {
		return 0, 0, fmt.Errorf("kind %q: %w", k.String(), domain.ErrUnknownKind)
	}
	if limit < 0 || limit > MaxLimit {
		return 0, 0, &domain.ValidationError{Field: "limit", Reason: fmt.Sprintf("must be 1..%d", MaxLimit)}
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	before, err := parseCursor(scope, cursor)
	return limit, before, err
}

// readPage reads a newest-first page from rows (queried for limit+1 rows,
// failed with queryErr when not nil), each decoded by scan, which also
// returns its position. When a row beyond limit exists, the page
// continues from next(the last kept position).
func readPage[T any](rows *sql.Rows, queryErr error, limit int, scan func(*sql.Rows) (T, int64, error), next func(int64) string) (Page[T], error) {
	if queryErr != nil {
		return Page[T]{}, queryErr
	}
	defer rows.Close()
	var page Page[T]
	var cut int64 // position of the last item kept
	for rows.Next() {
		item, pos, err := scan(rows)
		if err != nil {
			return Page[T]{}, err
		}
		if len(page.Items) == limit {
			page.Next = next(cut)
			break
		}
		page.Items = append(page.Items, item)
		cut = pos
	}
	return page, rows.Err()
}
