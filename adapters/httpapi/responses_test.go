package httpapi

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/eventcodec"
)

// The hand-written encoders must produce exactly what encoding/json does.
func TestAppendJSONEqualsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		for _, v := range []jsonAppender{
			randTargetResponse(rng),
			batchResponse{Items: randList(rng, randTargetResponse), Position: rng.Int64()},
			randWriteResponse(rng),
			pageResponse[actorJSON]{Items: randList(rng, func(r *rand.Rand) actorJSON {
				return actorJSON{User: randString(r), Since: randString(r)}
			}), NextCursor: randString(rng)},
			pageResponse[itemJSON]{Items: randList(rng, func(r *rand.Rand) itemJSON {
				return itemJSON{Target: randTarget(r), Since: randString(r)}
			}), NextCursor: randString(rng)},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.appendJSON(nil); string(got) != string(want) {
				t.Fatalf("case %d, %T:\n got %s\nwant %s", i, v, got, want)
			}
		}
	}
}

var oddStrings = []string{"", "a", "u-42", "article", "a<b>&c", "quote\"back\\slash", "line\nbreak\ttab\x00\x1f",
	"é✓", "\u2028\u2029", "bad\xffutf8", "\x7f", strings.Repeat("x", 200)}

func randString(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return oddStrings[r.IntN(len(oddStrings))]
	}
	const alphabet = "abcXYZ019._:@-"
	b := make([]byte, r.IntN(20))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func randTarget(r *rand.Rand) eventcodec.TargetJSON {
	return eventcodec.TargetJSON{Type: randString(r), ID: randString(r)}
}

func randList[T any](r *rand.Rand, item func(*rand.Rand) T) []T {
	switch r.IntN(5) {
	case 0:
		return nil
	case 1:
		return []T{}
	}
	out := make([]T, r.IntN(6)+1)
	for i := range out {
		out[i] = item(r)
	}
	return out
}

func randMap[V any](r *rand.Rand, value func(*rand.Rand) V) map[string]V {
	if r.IntN(6) == 0 {
		return nil
	}
	m := map[string]V{}
	n := r.IntN(5)
	if r.IntN(8) == 0 {
		n = r.IntN(20) // beyond appendMap's small array too
	}
	for range n {
		m[randString(r)] = value(r)
	}
	return m
}

func randInt(r *rand.Rand) int64 { return r.Int64N(1<<40) - 1<<20 }

func randBool(r *rand.Rand) bool { return r.IntN(2) == 0 }

// randKinds returns 0..9 distinct names, sorted: a server's kind order.
func randKinds(r *rand.Rand) []string {
	set := map[string]bool{}
	for range r.IntN(10) {
		set[randString(r)] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// randKindMap returns, most of the time, a map holding exactly the kinds,
// as the projections' maps do (appendMap's lookup path); else one of other
// keys (its range path), sometimes as many as the kinds.
func randKindMap[V any](r *rand.Rand, kinds []string, value func(*rand.Rand) V) map[string]V {
	if r.IntN(4) == 0 {
		return randMap(r, value)
	}
	m := make(map[string]V, len(kinds))
	for _, k := range kinds {
		m[k] = value(r)
	}
	if len(kinds) > 0 && r.IntN(3) == 0 {
		delete(m, kinds[0])
		m[kinds[0]+"~"] = value(r) // as many keys, one not a kind
	}
	return m
}

func randTargetResponse(r *rand.Rand) targetResponse {
	kinds := randKinds(r)
	return targetResponse{Target: randTarget(r), Counts: randKindMap(r, kinds, randInt),
		Viewer: randKindMap(r, kinds, randBool), Position: randInt(r), order: kinds}
}

func randWriteResponse(r *rand.Rand) writeResponse {
	kinds := randKinds(r)
	return writeResponse{Changed: randBool(r), Target: randTarget(r), User: randString(r), Kind: randString(r),
		Active: randBool(r), Viewer: randKindMap(r, kinds, randBool), Counts: randKindMap(r, kinds, randInt),
		StreamVersion: randInt(r), Position: randInt(r), order: kinds}
}

// BenchmarkFeedPageJSON writes a 50-target feed page with a viewer, two
// kinds configured: the maps by lookup in the kinds' order (what the server
// does) and by ranging over them (a map of other keys).
func BenchmarkFeedPageJSON(b *testing.B) {
	kinds := []string{"collect", "like"}
	page := batchResponse{Items: make([]targetResponse, 50), Position: 123456}
	for i := range page.Items {
		page.Items[i] = targetResponse{Target: eventcodec.TargetJSON{Type: "article", ID: "t" + strconv.Itoa(i)},
			Counts: map[string]int64{"collect": int64(i), "like": int64(10 * i)},
			Viewer: map[string]bool{"collect": false, "like": i%3 == 0}, Position: int64(1000 + i)}
	}
	for _, c := range []struct {
		name  string
		order []string
	}{{"lookup", kinds}, {"range", nil}} {
		b.Run(c.name, func(b *testing.B) {
			for i := range page.Items {
				page.Items[i].order = c.order
			}
			buf := make([]byte, 0, 8<<10)
			for b.Loop() {
				buf = page.appendJSON(buf[:0])
			}
		})
	}
}
