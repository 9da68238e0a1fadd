package domain

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The byte tests must accept exactly what their regular expressions do.
func TestNamePatternsMatchTheirExpressions(t *testing.T) {
	for _, c := range []struct {
		p    namePattern
		expr string
	}{
		{kindPattern, `^[a-z][a-z0-9_]{0,31}$`},
		{targetTypePattern, `^[a-z][a-z0-9_-]{0,31}$`},
		{idPattern, `^[A-Za-z0-9._:@-]{1,128}$`},
	} {
		if c.p.String() != c.expr {
			t.Errorf("String() = %s, want %s", c.p, c.expr)
		}
		re := regexp.MustCompile(c.expr)
		alphabet := "aZz09_-.:@/ \x00\xffé" + "\u2028"
		rng := rand.New(rand.NewPCG(7, 9))
		cases := []string{"", strings.Repeat("a", 31), strings.Repeat("a", 32), strings.Repeat("a", 33),
			strings.Repeat("a", 128), strings.Repeat("a", 129), "a\n", "\na"}
		for range 20000 {
			var b strings.Builder
			for range rng.IntN(40) {
				b.WriteByte(alphabet[rng.IntN(len(alphabet))])
			}
			cases = append(cases, b.String())
		}
		for _, s := range cases {
			if got, want := c.p.MatchString(s), re.MatchString(s); got != want {
				t.Fatalf("%s: MatchString(%q) = %v, the expression says %v", c.expr, s, got, want)
			}
		}
	}
}
