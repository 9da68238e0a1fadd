package httpapi

import (
	"encoding/json"
	"math/rand/v2"
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

func randTargetResponse(r *rand.Rand) targetResponse {
	return targetResponse{Target: randTarget(r), Counts: randMap(r, randInt), Viewer: randMap(r, randBool), Position: randInt(r)}
}

func randWriteResponse(r *rand.Rand) writeResponse {
	return writeResponse{Changed: randBool(r), Target: randTarget(r), User: randString(r), Kind: randString(r),
		Active: randBool(r), Viewer: randMap(r, randBool), Counts: randMap(r, randInt),
		StreamVersion: randInt(r), Position: randInt(r)}
}
