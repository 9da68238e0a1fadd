// Package dburl tells what a --db value names (a PostgreSQL URL, a URL of
// another scheme or a misspelt PostgreSQL one, a libpq keyword/value
// string, or a SQLite file) and shows it in messages and logs without its
// passwords. It opens nothing and imports no driver, so that its fuzz
// target builds fast.
package dburl
