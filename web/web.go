package web

import (
	"embed"
	"io/fs"
)

// dist is the committed output of `npm run build` (web/demo/dist).
//
//go:embed all:demo/dist
var dist embed.FS

// Demo returns the built demo page: index.html at its root and the
// content-hashed files under assets/. It is safe for concurrent use.
func Demo() fs.FS {
	sub, err := fs.Sub(dist, "demo/dist")
	if err != nil {
		// fs.Sub fails only on an invalid path; "demo/dist" is valid.
		panic(err)
	}
	return sub
}
