package projections_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// The views file is derived from the log: Open catches it up with the log
// (no pipeline is needed for what was written before), and Rebuild
// recomputes every projection from the log and swaps the new tables in,
// giving the same counts. Verify compares the tables with the log.
func ExampleSet_Rebuild() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ledger-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "ledger.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: db}, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	kinds := domain.MustKindSet("like", "collect")
	ledger := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	target, _ := domain.ParseTarget("article/a-1")
	for _, name := range []string{"u1", "u2", "u3"} {
		user, _ := domain.NewUserID(name)
		for _, k := range kinds.Kinds() {
			if _, err := ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: k, On: true}); err != nil {
				panic(err)
			}
		}
	}

	set, err := projections.Open(ctx, projections.Config{Path: projections.ViewsPath(db), Kinds: kinds}, store, nil)
	if err != nil {
		panic(err)
	}
	defer set.Close()
	show := func(when string) {
		view, err := set.Target(ctx, target, nil)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: likes=%d collects=%d position=%d\n", when, view.Counts["like"], view.Counts["collect"], view.Position)
	}
	show("opened")
	if err := set.Rebuild(ctx, store, nil, nil); err != nil {
		panic(err)
	}
	show("rebuilt")
	report, err := set.Verify(ctx, store, "")
	if err != nil {
		panic(err)
	}
	fmt.Println("verified:", report.OK())

	// Output:
	// opened: likes=3 collects=3 position=6
	// rebuilt: likes=3 collects=3 position=6
	// verified: true
}
