package sqlitedsn

import (
	"database/sql"

	"github.com/mattn/go-sqlite3"
)

// Register registers go-sqlite3 under name with settings that have no DSN
// parameter: pragmas (one or more statements) run on every connection it
// opens. Call it once per name, from an init function.
func Register(name, pragmas string) {
	sql.Register(name, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(pragmas, nil)
		return err
	}})
}
