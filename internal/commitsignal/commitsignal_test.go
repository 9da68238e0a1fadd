package commitsignal

import "testing"

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNotifyWakesWaitersOnce(t *testing.T) {
	s := New()
	before := s.Wait()
	if closed(before) {
		t.Fatal("closed before any commit")
	}
	s.Notify()
	if !closed(before) {
		t.Fatal("Notify did not close the waiters' channel")
	}
	if closed(s.Wait()) {
		t.Fatal("the next Wait is closed before the next commit")
	}
}

func TestEndWakesForGood(t *testing.T) {
	s := New()
	waiting := s.Wait()
	s.End()
	s.End()
	s.Notify() // after End: no double close
	if !closed(waiting) || !closed(s.Wait()) {
		t.Fatal("End did not close the channel for good")
	}
}
