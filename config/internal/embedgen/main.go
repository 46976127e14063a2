// Command embedgen copies the repository's config.yaml into the config package, which embeds it:
// go:embed cannot reach a parent directory, and the binary must carry its defaults.
package main

import (
	"fmt"
	"os"
)

const header = "# Code generated from config.yaml by go generate (config/internal/embedgen); DO NOT EDIT.\n"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: embedgen SRC DST")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedgen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], append([]byte(header), src...), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "embedgen:", err)
		os.Exit(1)
	}
}
