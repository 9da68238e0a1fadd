// Package sqlitedsn is how the project opens its SQLite files (the event
// log, the views file, scratch files of verify and the bench baseline):
// File builds the data source names, so that every one escapes its path
// the same way, and Register the drivers that run the connection settings
// a DSN cannot carry. It knows the URI form of SQLite's file names and
// nothing about what the files hold.
package sqlitedsn
