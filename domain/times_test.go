package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// TestParseTime: RFC 3339 times are taken with their offset and up to
// nanoseconds; what Go's parser takes beyond RFC 3339 (an offset of 24
// hours or 60 minutes, a comma before the fraction) is refused, and so is
// a leap second, naming it.
func TestParseTime(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for s, want := range map[string]time.Time{
			"2026-11-22T10:00:00Z":                time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			"2026-11-22T15:30:00+05:30":           time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			"2026-11-22T10:00:00-00:00":           time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			"2026-11-22T10:00:00.123456789Z":      time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC),
			"2026-11-22T10:00:00.1234567891Z":     time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC),
			"2026-11-22T09:00:00.5-01:00":         time.Date(2026, 11, 22, 10, 0, 0, 500000000, time.UTC),
			"2026-11-23T09:59:00+23:59":           time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			"0001-01-01T00:00:00Z":                time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			"9999-12-31T23:59:59.999999999+00:00": time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		} {
			got, err := domain.ParseTime(s)
			if err != nil || !got.Equal(want) {
				t.Errorf("%s: %v %v, want %v", s, got, err, want)
			}
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for s, why := range map[string]string{
			"":                          "RFC 3339",
			"2026-11-22":                "RFC 3339",
			"2026-11-22T10:00:00":       "RFC 3339",
			" 2026-11-22T10:00:00Z":     "RFC 3339",
			"1795255200":                "RFC 3339",
			"24h":                       "RFC 3339",
			"10000-01-01T00:00:00Z":     "RFC 3339",
			"2026-11-22T10:00:00+24:00": "offset",
			"2026-11-22T10:00:00-24:00": "offset",
			"2026-11-22T10:00:00+12:60": "offset",
			"2026-11-22T10:00:00,5Z":    "RFC 3339",
			"2016-12-31T23:59:60Z":      "leap second",
			"2026-02-30T00:00:00Z":      "RFC 3339",
		} {
			got, err := domain.ParseTime(s)
			if err == nil || !strings.Contains(err.Error(), why) {
				t.Errorf("%q: %v %v, want an error saying %q", s, got, err, why)
			}
		}
	})
}
