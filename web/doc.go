// Package web holds the browser half of the Interaction Ledger and embeds
// the built demo page, so that `ledger serve` serves it at / without Node.
//
// What lives here: the embedded Vite output of demo/ (Demo). The sources
// are TypeScript: client/ is the @interactionledger/client package (fetch
// client, TanStack Query bindings, live updates, React hooks), demo/ the
// React demo page; both build and test with npm (see web/package.json).
//
// What must not live here: Go code that serves HTTP (adapters/httpapi
// serves any fs.FS it is given) or any business rule.
package web
