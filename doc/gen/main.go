// Command gen writes doc/'s generated man pages and completions.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/courier-sdn/courier/doc"
)

func main() {
	files, err := doc.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, b := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
