// Package commitsignal is the "a commit happened" broadcast both event
// stores hand to tailers through domain.Tailable's Committed: a channel
// closed at the next commit, and closed for good once the store closes.
package commitsignal
