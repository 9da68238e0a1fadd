// Package sqlitedsn builds the data source names under which the project
// opens its SQLite files (the event log, the views file, scratch files of
// verify and the bench baseline), so that every one escapes its path the
// same way. It knows the URI form of SQLite's file names and nothing about
// what the files hold; it imports only the standard library.
package sqlitedsn
