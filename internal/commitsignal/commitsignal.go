package commitsignal

import "sync"

// Signal is a broadcast of "a commit happened": Wait returns a channel
// that Notify closes (and replaces), and End closes for good. The zero
// Signal is not usable; use New. It is safe for concurrent use.
type Signal struct {
	mu    sync.Mutex
	ch    chan struct{}
	ended bool
}

// New returns a signal that no commit has notified yet.
func New() *Signal { return &Signal{ch: make(chan struct{})} }

// Wait returns a channel closed at the next Notify, or already closed
// after End, so that a reader waiting on it wakes and finds the store
// closed instead of waiting for ever.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// Notify wakes every waiter. After End it does nothing.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	close(s.ch)
	s.ch = make(chan struct{})
}

// End wakes every waiter for good: Wait returns a closed channel from now
// on. It may be called more than once.
func (s *Signal) End() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended = true
		close(s.ch)
	}
}
