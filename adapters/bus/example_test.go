package bus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// The whole ledger in one program, wired as `ledger serve` wires it: the
// SQLite log, the Ledger writing to it, the projections in their views
// file, and a watermill router carrying committed events from the log to
// the projections (StartProjections). A write answers with its position; once WaitFor has
// seen that position applied, every read shows the write. Everything is
// closed in the reverse order of opening: the router first (it applies
// to the set), then the set, then the log. The README's "Using it from
// Go" section quotes this example.
func Example_pipeline() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ledger-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "ledger.db")

	// The log: one writer per file, so one open store per process.
	store, err := sqlite.Open(ctx, sqlite.Config{Path: db}, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	kinds := domain.MustKindSet("like", "collect")
	ledger := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)

	// The read side, in <db>.views; Open catches it up with the log.
	set, err := projections.Open(ctx, projections.Config{Path: projections.ViewsPath(db), Kinds: kinds}, store, nil)
	if err != nil {
		panic(err)
	}
	defer set.Close()

	// The pipeline: a router with one handler feeding every projection
	// from the log, running once StartProjections returns.
	pipeline, err := bus.StartProjections(ctx, store, set, bus.SubscriberConfig{}, nil)
	if err != nil {
		panic(err)
	}
	defer pipeline.Close() // before set.Close and store.Close, which the deferred calls above run next

	target, _ := domain.ParseTarget("article/a-1")
	like, _ := kinds.Parse("like")
	read := func(what string, pos int64, viewer domain.UserID) {
		// A bounded wait: without a running pipeline, WaitFor would wait
		// for ever.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := set.WaitFor(wctx, pos); err != nil {
			panic(err)
		}
		view, err := set.Target(ctx, target, &viewer)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: likes=%d collects=%d, %s likes it: %v\n",
			what, view.Counts["like"], view.Counts["collect"], viewer, view.Viewer["like"])
	}

	var last domain.Outcome
	for _, name := range []string{"u1", "u2", "u42"} {
		user, _ := domain.NewUserID(name)
		if last, err = ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: like, On: true}); err != nil {
			panic(err)
		}
	}
	u42, _ := domain.NewUserID("u42")
	read("after three likes", last.Position, u42)

	unliked, err := ledger.Set(ctx, domain.SetRequest{User: u42, Target: target, Kind: like, On: false})
	if err != nil {
		panic(err)
	}
	read("after u42's unlike", unliked.Position, u42)

	// Output:
	// after three likes: likes=3 collects=0, u42 likes it: true
	// after u42's unlike: likes=2 collects=0, u42 likes it: false
}

// The same pipeline on watermill's in-memory gochannel bus, as a test of
// your own might run it: Forward relays the log to the gochannel
// publisher from the set's lowest checkpoint, and one ProjectionHandler
// consumes it for every projection, a batch in one transaction, as
// AddProjections does. gochannel must be in its ordered configuration
// (BlockPublishUntilSubscriberAck), and Forward may start only once the
// router is running: gochannel drops what is published before a
// subscriber exists. Stop Forward before the router.
func Example_goChannel() {
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
	set, err := projections.Open(ctx, projections.Config{Path: projections.ViewsPath(db), Kinds: kinds}, store, nil)
	if err != nil {
		panic(err)
	}
	defer set.Close()

	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer pubsub.Close()
	router, err := bus.NewRouter(nil)
	if err != nil {
		panic(err)
	}
	router.AddConsumerHandler(bus.AllHandlerName, bus.DefaultTopic, pubsub, bus.ProjectionHandler(set, set.Names()...))
	routed := make(chan error, 1)
	go func() { routed <- router.Run(ctx) }()
	select { // a router that fails at once never closes Running
	case <-router.Running():
	case err := <-routed:
		panic(err)
	}
	fctx, stopForward := context.WithCancel(ctx)
	forwarded := make(chan error, 1)
	go func() {
		forwarded <- bus.Forward(fctx, store, pubsub, bus.ForwardConfig{StartAfter: set.LowestCheckpoint}, nil)
	}()
	defer func() {
		stopForward()
		<-forwarded
		router.Close()
		<-routed
	}()

	user, _ := domain.NewUserID("u7")
	target, _ := domain.ParseTarget("photo/p-9")
	collect, _ := kinds.Parse("collect")
	out, err := ledger.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: collect, On: true})
	if err != nil {
		panic(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := set.WaitFor(wctx, out.Position); err != nil {
		panic(err)
	}
	view, err := set.Target(ctx, target, &user)
	if err != nil {
		panic(err)
	}
	page, err := set.Collection(ctx, user, collect, "", 10, "")
	if err != nil {
		panic(err)
	}
	fmt.Printf("collects=%d, u7 collected it: %v, u7's collection: %v\n",
		view.Counts["collect"], view.Viewer["collect"], page.Items[0].Target)

	// Output:
	// collects=1, u7 collected it: true, u7's collection: photo/p-9
}
