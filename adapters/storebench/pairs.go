package storebench

import (
	"fmt"
	"slices"

	"github.com/interactionledger/ledger/domain"
)

// Spread is the median, minimum and maximum of a few measurements.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the spread of xs; the median of an even count is the
// mean of the middle two. It returns the zero Spread for no values.
func Summarize(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(xs))
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// Paired is the outcome of paired runs: in each pair, one run of the
// baseline and one of each subject.
type Paired struct {
	Base     []Result   // one per pair
	Subjects [][]Result // per subject, one per pair
}

// Ratios returns subject j's rate over the baseline's, pair by pair.
func (p Paired) Ratios(j int) []float64 {
	out := make([]float64, len(p.Base))
	for i := range p.Base {
		out[i] = p.Subjects[j][i].PerSecond / p.Base[i].PerSecond
	}
	return out
}

// Rates returns the rates of rs.
func Rates(rs []Result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.PerSecond
	}
	return out
}

// Pair runs pairs rounds of the baseline and every subject, each of which
// should start from a log of the same size. The order is reversed every
// other round (baseline first, then baseline last), so that a drift of the
// machine's speed weighs on both sides alike. It returns
// domain.ErrInvalidInput when pairs < 1, and the first run's error.
func Pair(pairs int, base func() (Result, error), subjects ...func() (Result, error)) (Paired, error) {
	if pairs < 1 {
		return Paired{}, fmt.Errorf("bench: pairs must be >= 1: %w", domain.ErrInvalidInput)
	}
	runs := append([]func() (Result, error){base}, subjects...)
	p := Paired{Subjects: make([][]Result, len(subjects))}
	for i := range pairs {
		got := make([]Result, len(runs))
		for k := range runs {
			j := k
			if i%2 == 1 {
				j = len(runs) - 1 - k
			}
			r, err := runs[j]()
			if err != nil {
				return Paired{}, err
			}
			got[j] = r
		}
		p.Base = append(p.Base, got[0])
		for j := range subjects {
			p.Subjects[j] = append(p.Subjects[j], got[j+1])
		}
	}
	return p, nil
}
