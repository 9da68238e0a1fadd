package storebench

import (
	"errors"
	"slices"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{3}, Spread{3, 3, 3}},
		{[]float64{5, 1, 3}, Spread{3, 1, 5}},
		{[]float64{4, 1, 2, 10}, Spread{3, 1, 10}},
	} {
		if got := Summarize(c.in); got != c.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

// Pair alternates the order of the runs from round to round, and files
// each result under the run that made it.
func TestPairAlternatesOrder(t *testing.T) {
	var order []string
	run := func(name string, rate float64) func() (Result, error) {
		return func() (Result, error) {
			order = append(order, name)
			return Result{PerSecond: rate * float64(len(order))}, nil
		}
	}
	p, err := Pair(3, run("base", 1), run("a", 10), run("b", 100))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"base", "a", "b", "b", "a", "base", "base", "a", "b"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if got := Rates(p.Base); !slices.Equal(got, []float64{1, 6, 7}) {
		t.Errorf("base rates %v", got)
	}
	if got := Rates(p.Subjects[1]); !slices.Equal(got, []float64{300, 400, 900}) {
		t.Errorf("b rates %v", got)
	}
	if got := p.Ratios(0); !slices.Equal(got, []float64{20, 50.0 / 6, 80.0 / 7}) {
		t.Errorf("a ratios %v", got)
	}
}

func TestPairErrors(t *testing.T) {
	ok := func() (Result, error) { return Result{PerSecond: 1}, nil }
	if _, err := Pair(0, ok); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("0 pairs: %v, want ErrInvalidInput", err)
	}
	boom := errors.New("boom")
	if _, err := Pair(2, ok, func() (Result, error) { return Result{}, boom }); !errors.Is(err, boom) {
		t.Errorf("failing run: %v, want its error", err)
	}
}
