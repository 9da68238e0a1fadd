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

// A cursor is the position of the last item of a page and the position
// the page was read at (the projection's checkpoint in the snapshot it
// was read from), bound to the list it came from by a checksum of the
// list and both, so a client cannot reuse one on another list or alter
// one by accident. It holds no secret and no node's state: every node,
// and a views file rebuilt or deleted since, reads it the same (README,
// "How positions work"). A cursor made by hand reads nothing a client
// could not page to. The next page is read at or after the position the
// page was read at (the server waits for it as for min_position): on a
// node behind, an item of the page turned off and on again since its
// position there would come again below the cursor.
//
// The cursors of the build before (v2) hold the item's position alone;
// they are still read, as read at position 0.
const (
	cursorPosLen = 8
	cursorSumLen = 16
	cursorV2Len  = cursorPosLen + cursorSumLen
	cursorLen    = 2*cursorPosLen + cursorSumLen
)

func makeCursor(scope string, pos, at int64) string {
	buf := make([]byte, 2*cursorPosLen, cursorLen)
	binary.BigEndian.PutUint64(buf, uint64(pos))
	binary.BigEndian.PutUint64(buf[cursorPosLen:], uint64(at))
	buf = append(buf, cursorSum("ledger cursor v3\x00", scope, buf)...)
	return cursorEncoding.EncodeToString(buf)
}

// cursorEncoding is unpadded URL-safe base64 that decodes only the
// spelling it encodes.
var cursorEncoding = base64.RawURLEncoding.Strict()

func cursorSum(version, scope string, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(version))
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:cursorSumLen]
}

// parseCursor returns the position a cursor stands for and the position
// its page was read at; the empty cursor means the first page (every
// position, read at 0). It returns a *domain.ValidationError with Field
// "cursor" for anything else.
func parseCursor(scope, c string) (pos, at int64, err error) {
	if c == "" {
		return 1<<63 - 1, 0, nil
	}
	bad := &domain.ValidationError{Field: "cursor", Reason: "not a cursor issued for this list " +
		"(one of a build before this one's cursors, from before an upgrade, is not either: start again from the first page)"}
	// A cursor has one spelling: strict decoding refuses a last character
	// whose unused low bits are set ("…w4m" for "…w4k"), and the exact
	// length the CR and LF that the decoder skips.
	raw, err := cursorEncoding.DecodeString(c)
	switch {
	case err != nil || len(c) != cursorEncoding.EncodedLen(len(raw)):
		return 0, 0, bad
	case len(raw) == cursorV2Len && bytes.Equal(raw[cursorPosLen:], cursorSum("ledger cursor v2\x00", scope, raw[:cursorPosLen])):
	case len(raw) == cursorLen && bytes.Equal(raw[2*cursorPosLen:], cursorSum("ledger cursor v3\x00", scope, raw[:2*cursorPosLen])):
		at = int64(binary.BigEndian.Uint64(raw[cursorPosLen:]))
	default:
		return 0, 0, bad
	}
	pos = int64(binary.BigEndian.Uint64(raw[:cursorPosLen]))
	if pos <= 0 || at < 0 {
		return 0, 0, bad
	}
	return pos, at, nil
}

// ActorsCursorAt returns the position the page that issued cursor, a
// cursor of Actors(t, k, ...), was read at (0 for ""): the next page must
// be read at or after it. It returns Actors's error for a bad cursor.
func ActorsCursorAt(t domain.Target, k domain.Kind, cursor string) (int64, error) {
	_, at, err := parseCursor(actorsScope(t, k), cursor)
	return at, err
}

// CollectionCursorAt is ActorsCursorAt for a cursor of Collection(u, k,
// targetType, ...).
func CollectionCursorAt(u domain.UserID, k domain.Kind, targetType, cursor string) (int64, error) {
	_, at, err := parseCursor(collectionScope(u, k, targetType), cursor)
	return at, err
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
	before, _, err := parseCursor(scope, cursor)
	return limit, before, err
}

// readPage reads a newest-first page from rows (queried for limit+1 rows,
// failed with queryErr when not nil), each decoded by scan, which also
// returns its position and the checkpoint of the snapshot it was read
// from. When a row beyond limit exists, the page continues from
// next(the last kept position, that checkpoint).
func readPage[T any](rows *sql.Rows, queryErr error, limit int, scan func(*sql.Rows) (T, int64, int64, error), next func(pos, at int64) string) (Page[T], error) {
	if queryErr != nil {
		return Page[T]{}, queryErr
	}
	defer rows.Close()
	var page Page[T]
	var cut int64 // position of the last item kept
	for rows.Next() {
		item, pos, at, err := scan(rows)
		if err != nil {
			return Page[T]{}, err
		}
		if len(page.Items) == limit {
			page.Next = next(cut, at)
			break
		}
		page.Items = append(page.Items, item)
		cut = pos
	}
	return page, rows.Err()
}
