package sqlitedsn

import (
	"net/url"
	"strings"
)

// File returns the "file:" URI of the SQLite file at path with the query
// parameters q (the driver's _name settings and SQLite's own, such as
// mode). The path is escaped as a URI path, so a name with '#', '?', '%'
// or a space opens that very file: unescaped, '#' and '?' would end the
// path early (opening another file) and '%' would start an escape.
//
// An absolute path gets an empty authority ("file:///..."), so that a
// path starting with "//" is not read as a host. File never fails; an
// empty path is SQLite's own temporary database.
func File(path string, q url.Values) string {
	u := url.URL{Path: path}
	p := u.EscapedPath()
	if strings.HasPrefix(path, "/") {
		p = "//" + p
	}
	if len(q) == 0 {
		return "file:" + p
	}
	return "file:" + p + "?" + q.Encode()
}
