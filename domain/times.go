package domain

import (
	"errors"
	"math"
	"time"
)

// MinTime and MaxTime bound the times an event can hold: the stores keep
// them as Unix nanoseconds in an int64, which reach from 1677-09-21 to
// 2262-04-11. An event's OccurredAt must be in [MinTime, MaxTime).
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// ValidateEventTime checks that t can be an event's OccurredAt. It
// returns a *ValidationError naming field.
func ValidateEventTime(field string, t time.Time) error {
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return invalid(field, "%s is outside %s..%s, the times the log can hold",
			t.Format(time.RFC3339Nano), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return nil
}

// ClampTime returns t within [MinTime, MaxTime]. Every event time is in
// [MinTime, MaxTime), so a bound of a history read (EventFilter.Since,
// Until) clamped selects the same events as the bound itself, and its
// Unix nanoseconds do not overflow. A given bound clamped is never the
// zero time, which an EventFilter reads as no bound.
func ClampTime(t time.Time) time.Time {
	switch {
	case t.Before(MinTime):
		return MinTime
	case t.After(MaxTime):
		return MaxTime
	}
	return t
}

// TimeBounds checks the occurred_at bounds of a history read, either of
// which may be absent (nil), and returns them as EventFilter's Since and
// Until hold them (zero when absent, else clamped): until must be after
// since, or the *ValidationError names "until".
func TimeBounds(since, until *time.Time) (s, u time.Time, err error) {
	if since != nil && until != nil && !until.After(*since) {
		return s, u, invalid("until", "%s must be after since, %s",
			until.Format(time.RFC3339Nano), since.Format(time.RFC3339Nano))
	}
	if since != nil {
		s = ClampTime(*since)
	}
	if until != nil {
		u = ClampTime(*until)
	}
	return s, u, nil
}

// OccurredNanos returns f's occurred_at bounds as Unix nanoseconds,
// [since, until), and whether each applies (a zero Since or Until does
// not). Bounds beyond MinTime and MaxTime are clamped (ClampTime), so a
// store compares them without overflow.
func (f EventFilter) OccurredNanos() (since int64, hasSince bool, until int64, hasUntil bool) {
	if !f.Since.IsZero() {
		since, hasSince = ClampTime(f.Since).UnixNano(), true
	}
	if !f.Until.IsZero() {
		until, hasUntil = ClampTime(f.Until).UnixNano(), true
	}
	return since, hasSince, until, hasUntil
}

// ParseTime parses s as an RFC 3339 time with an offset or Z
// (2026-11-22T10:00:00Z, 2026-11-22T15:30:00.5+05:30); fractional digits
// past the ninth are cut. It refuses what Go's parser takes beyond RFC
// 3339, a comma before the fraction and an offset's hour of 24 or minute
// of 60 (+24:00 was taken as a day's offset), and a leap second (:60),
// which the log's times, Unix time, cannot hold. Its error says what is
// wrong, to follow the value quoted: "is not an RFC 3339 time".
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	const second = len("2006-01-02T15:04:")
	switch {
	case err != nil && len(s) > second+2 && s[second-1] == ':' && s[second:second+2] == "60":
		return time.Time{}, errors.New("is a leap second (second 60), which the log's times (Unix time) cannot hold: give second 59 or the next minute")
	case err != nil || (len(s) > second+2 && s[second+2] == ','):
		return time.Time{}, errors.New("is not an RFC 3339 time")
	case badOffset(s):
		return time.Time{}, errors.New("has an offset beyond ±23:59, which RFC 3339 does not allow")
	}
	return t, nil
}

// badOffset reports whether s, which Go's parser took as RFC 3339, ends
// in an offset whose hour is over 23 or minute over 59.
func badOffset(s string) bool {
	if len(s) < 6 {
		return false
	}
	off := s[len(s)-6:]
	return (off[0] == '+' || off[0] == '-') && (off[1:3] > "23" || off[4:6] > "59")
}
