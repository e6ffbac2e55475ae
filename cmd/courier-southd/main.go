// Command courier-southd arbitrates Courier's southbound.
package main

import (
	"fmt"
	"os"

	"github.com/courier-sdn/courier/southd"
)

func main() {
	if err := southd.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-southd:", err)
		os.Exit(1)
	}
}
