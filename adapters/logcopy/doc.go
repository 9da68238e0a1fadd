// Package logcopy moves a whole event log from one store to another
// (`ledger import log`): every event at its position, the streams'
// snapshots, the idempotency records and the log's identity, in one
// transaction on the destination, while the source's write lock is held;
// then it seals the source, which refuses writes from then on, naming
// where the log went.
//
// It defines the port the stores implement (Store, Tx), the rows they
// exchange, and Copy, the one place the steps and checks of a move are
// written. Sealed is a store that tells where its sealed log went (Moved),
// for the commands and the relay that still read a sealed log, and
// MovedError is the refusal of a write to one, which the commands find to
// say where the log went in one wording. The rows are the stores' own columns: a copy keeps every value
// as stored, decodes nothing and assigns nothing anew. Nothing here knows
// a particular store.
package logcopy
