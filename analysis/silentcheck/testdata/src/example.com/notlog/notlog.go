// Package notlog has a function named like a level without a logger's formatting
// sibling: nothing says it writes anywhere.
package notlog

func Error(v ...any) {}
