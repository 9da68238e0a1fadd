package domain_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
)

// A Ledger records a like and its cancellation as two events of one
// stream (one user, one target). Each answer says where its event landed
// in the log (Position, what a reader waits for) and the stream's state
// after it. The store is the embedded SQLite one: this example lives in
// the external test package, so domain itself still imports no adapter.
func ExampleLedger_Set() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ledger-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "ledger.db")}, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	kinds := domain.MustKindSet("like", "collect")
	ledger := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	user, _ := domain.NewUserID("u42")
	target, _ := domain.ParseTarget("article/a-1")
	like, _ := kinds.Parse("like")

	liked, err := ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: like, On: true})
	if err != nil {
		panic(err)
	}
	fmt.Printf("like: changed=%v active=%v position=%d version=%d\n",
		liked.Changed, liked.Active, liked.Position, liked.StreamVersion)

	// Liking again changes nothing and appends nothing.
	again, _ := ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: like, On: true})
	fmt.Printf("again: changed=%v position=%d\n", again.Changed, again.Position)

	cancelled, _ := ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: like, On: false})
	fmt.Printf("unlike: changed=%v active=%v position=%d state=%q\n",
		cancelled.Changed, cancelled.Active, cancelled.Position, cancelled.State)

	// Bad input is refused before anything is written: a kind that is
	// not configured, and a malformed one (a *ValidationError).
	share, _ := domain.ParseKind("share")
	_, err = ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: share, On: true})
	fmt.Println("unknown kind:", errors.Is(err, domain.ErrUnknownKind))
	_, err = domain.ParseTarget("no-slash")
	var invalid *domain.ValidationError
	fmt.Println("invalid target:", errors.As(err, &invalid), errors.Is(err, domain.ErrInvalidInput), invalid.Field)

	// Output:
	// like: changed=true active=true position=1 version=1
	// again: changed=false position=1
	// unlike: changed=true active=false position=2 state=""
	// unknown kind: true
	// invalid target: true true target
}
