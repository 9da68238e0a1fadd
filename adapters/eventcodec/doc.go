// Package eventcodec is the one external representation of ledger events:
// the JSON object of docs/api.md (used by the HTTP API, the bus payload, NDJSON
// and the history export) and the CSV row of the history export.
//
// Decoding validates every field with the domain constructors, so a decoded
// Event is as trustworthy as one the Ledger built. Nothing here does I/O
// beyond the writer or reader it is handed.
package eventcodec
