package domain

import "testing"

// BenchmarkRequestFingerprint compares the request fingerprint recorded
// with an idempotency key (hash: a hash per field) with the whole-request
// hash it replaced (wholeHash), on an HTTP write's request.
func BenchmarkRequestFingerprint(b *testing.B) {
	user, _ := NewUserID("u42")
	target, _ := ParseTarget("article/a-1")
	kind, _ := ParseKind("like")
	v := int64(3)
	r := SetRequest{User: user, Target: target, Kind: kind, On: true, ExpectedVersion: &v,
		Metadata: MustMetadata(map[string]string{"source": "web", "page": "/articles/a-1"})}
	b.Run("PerField", func(b *testing.B) {
		for b.Loop() {
			_ = r.hash()
		}
	})
	b.Run("Whole", func(b *testing.B) {
		for b.Loop() {
			_ = r.wholeHash()
		}
	})
}
