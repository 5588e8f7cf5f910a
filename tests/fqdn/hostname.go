// Prints os.Hostname(): Go makes the uname system call itself (and reads
// /proc/sys/kernel/hostname for a 64-character name), never libc's uname or
// gethostname, so an LD_PRELOAD library cannot reach it, cgo or not.
package main

import (
	"fmt"
	"os"
)

func main() {
	name, err := os.Hostname()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("name=%s\n", name)
}
